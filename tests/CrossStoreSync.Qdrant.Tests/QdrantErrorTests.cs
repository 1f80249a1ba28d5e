using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.Stores;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>gRPC statuses and transport failures mapped to <see cref="QdrantException"/>, the store's own retries, API keys and TLS.</summary>
public sealed class QdrantErrorTests : IAsyncLifetime
{
    private static readonly CollectionDefinition[] Items = [new("items", 4, VectorDistance.Cosine)];
    private readonly List<QdrantVectorStore> _stores = [];
    private FakeQdrantServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeQdrantServer.StartAsync(apiKey: "right");

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            store.Dispose();
        }

        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        Assert.True(violations.Length == 0, "Calls the fake does not implement:\n" + string.Join('\n', violations));
    }

    private async Task<QdrantVectorStore> Ready(Action<QdrantVectorStoreOptions>? configure = null)
    {
        var store = Store(configure);
        await store.InitializeAsync(Items, CancellationToken.None);
        return store;
    }

    private QdrantVectorStore Store(Action<QdrantVectorStoreOptions>? configure = null, Uri? address = null)
    {
        var options = new QdrantVectorStoreOptions { Address = address ?? _server.Address, ApiKey = "right", RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        configure?.Invoke(options);
        var store = new QdrantVectorStore(options);
        _stores.Add(store);
        return store;
    }

    private static EntityChange Upsert(string id, long version = 1) =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), "{}", new float[] { 1, 2, 3, 4 }), new HlcTimestamp(1_700_000_000_000 + version, 0, 1));

    private int Calls(string method) => _server.Requests.GetValueOrDefault($"/qdrant.Points/{method} items");

    [Theory]
    [InlineData(StatusCode.Unavailable)]
    [InlineData(StatusCode.DeadlineExceeded)]
    [InlineData(StatusCode.ResourceExhausted)]
    [InlineData(StatusCode.Aborted)]
    public async Task Transient_statuses_are_retried_inside_the_call_then_surface_as_transient(StatusCode code)
    {
        var store = await Ready(o => o.MaxRetryAttempts = 2);
        _server.Faults.Status(code, count: 2);
        await store.ApplyAsync([Upsert("a")], CancellationToken.None);
        Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));

        _server.Faults.Status(code, count: 3);
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("b")], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(code, error.StatusCode);
        Assert.Equal("qdrant", error.Store);
        Assert.Equal("items", error.Collection);
        Assert.Equal("apply", error.Operation);
        Assert.Contains(code.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument)]
    [InlineData(StatusCode.NotFound)]
    [InlineData(StatusCode.PermissionDenied)]
    [InlineData(StatusCode.Unauthenticated)]
    [InlineData(StatusCode.FailedPrecondition)]
    [InlineData(StatusCode.Internal)]
    public async Task Permanent_statuses_surface_at_once_with_store_collection_and_status(StatusCode code)
    {
        var store = await Ready(o => o.MaxRetryAttempts = 3);
        var before = Calls("Get");
        _server.Faults.Status(code);

        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(code, error.StatusCode);
        Assert.Equal("items", error.Collection);
        Assert.NotNull(error.ServerMessage);
        Assert.Contains($"collection 'items' failed with {code}", error.Message, StringComparison.Ordinal);
        Assert.Equal(before + 1, Calls("Get")); // not retried
    }

    [Fact]
    public async Task ResourceExhausted_carries_the_servers_retry_after_and_the_retry_waits_for_it()
    {
        var store = await Ready(o => o.MaxRetryAttempts = 0);
        _server.Faults.Status(StatusCode.ResourceExhausted, retryAfter: TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(TimeSpan.FromSeconds(2), error.RetryAfter);

        var capped = await Ready(o => { o.MaxRetryAttempts = 0; o.MaxRetryAfter = TimeSpan.FromSeconds(1); });
        _server.Faults.Status(StatusCode.ResourceExhausted, retryAfter: TimeSpan.FromSeconds(60));
        error = await Assert.ThrowsAsync<QdrantException>(async () => await capped.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.Equal(TimeSpan.FromSeconds(1), error.RetryAfter);

        var retrying = await Ready();
        _server.Faults.Status(StatusCode.ResourceExhausted, retryAfter: TimeSpan.FromSeconds(1));
        var started = TimeProvider.System.GetTimestamp();
        await retrying.ApplyAsync([Upsert("a")], CancellationToken.None);
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromSeconds(0.9), "The retry did not wait for retry-after.");
    }

    [Fact]
    public async Task A_dropped_stream_is_transient_and_retried()
    {
        var store = await Ready(o => o.MaxRetryAttempts = 0);
        _server.Faults.DropStream();
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.True(error.IsTransient, error.Message);
        Assert.Contains(error.StatusCode, new StatusCode?[] { StatusCode.Internal, StatusCode.Unavailable, StatusCode.Unknown });

        var retrying = await Ready();
        _server.Faults.DropStream(count: 2);
        await retrying.ApplyAsync([Upsert("a")], CancellationToken.None);
        Assert.Single(await retrying.ReadDigestsAsync("items", ["a"], CancellationToken.None));
    }

    [Fact]
    public async Task A_hung_call_times_out_as_transient_and_is_retried()
    {
        var store = await Ready(o => o.RequestTimeout = TimeSpan.FromMilliseconds(300));
        _server.Faults.Slow(TimeSpan.FromSeconds(30));
        await store.ApplyAsync([Upsert("a")], CancellationToken.None);
        Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));

        var once = await Ready(o => { o.RequestTimeout = TimeSpan.FromMilliseconds(300); o.MaxRetryAttempts = 0; });
        _server.Faults.Slow(TimeSpan.FromSeconds(30));
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await once.ApplyAsync([Upsert("b")], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Null(error.StatusCode);
        Assert.Contains("did not answer within", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_drops_every_call_gives_a_transient_error()
    {
        var store = await Ready(o => o.MaxRetryAttempts = 1);
        _server.Faults.Down = true;
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Nothing_listening_is_Unavailable_and_transient()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var store = Store(o => o.MaxRetryAttempts = 0, new Uri($"http://127.0.0.1:{port}"));
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.InitializeAsync(Items, CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Null(error.Collection);
        Assert.Equal("initialize", error.Operation);
    }

    [Fact]
    public async Task The_callers_cancellation_passes_through_unwrapped()
    {
        var store = await Ready();
        _server.Faults.Slow(TimeSpan.FromSeconds(30));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.ApplyAsync([Upsert("a")], cancel.Token));
    }

    [Theory]
    [InlineData(null, "Must provide an API key or an Authorization bearer token")]
    [InlineData("wrong", "Invalid API key or JWT")]
    public async Task A_missing_or_wrong_api_key_is_permanent_with_Qdrants_message(string? key, string message)
    {
        var store = Store(o => o.ApiKey = key);
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.InitializeAsync(Items, CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(message, error.ServerMessage);
        Assert.Contains("check ApiKey", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_collection_deleted_behind_the_library_gives_a_permanent_NotFound_with_Qdrants_message()
    {
        var store = await Ready();
        _server.DropCollection("items");

        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a")], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("Not found: Collection `items` doesn't exist!", error.ServerMessage);
        Assert.Equal("apply", error.Operation);
    }

    [Fact]
    public async Task TLS_with_a_self_signed_certificate_is_trusted_by_its_thumbprint_only()
    {
        using var certificate = SelfSigned();
        await using var tls = await FakeQdrantServer.StartAsync(certificate: certificate);
        var thumbprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);

        var trusting = new QdrantVectorStore(new QdrantVectorStoreOptions { Address = tls.Address, CertificateThumbprint = string.Join(':', thumbprint.Chunk(2).Select(c => new string(c))) });
        _stores.Add(trusting);
        await trusting.InitializeAsync(Items, CancellationToken.None);
        await trusting.ApplyAsync([Upsert("a")], CancellationToken.None);
        Assert.Single(await trusting.ReadDigestsAsync("items", ["a"], CancellationToken.None));

        var other = new QdrantVectorStore(new QdrantVectorStoreOptions { Address = tls.Address, CertificateThumbprint = new string('0', 64), MaxRetryAttempts = 0 });
        _stores.Add(other);
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await other.InitializeAsync(Items, CancellationToken.None));
        Assert.False(error.IsTransient, error.Message);
        Assert.Contains("certificate", error.Message, StringComparison.OrdinalIgnoreCase);

        // Without a thumbprint the system's trust store decides, and it does not know this certificate.
        var untrusting = new QdrantVectorStore(new QdrantVectorStoreOptions { Address = tls.Address, MaxRetryAttempts = 0 });
        _stores.Add(untrusting);
        error = await Assert.ThrowsAsync<QdrantException>(async () => await untrusting.InitializeAsync(Items, CancellationToken.None));
        Assert.False(error.IsTransient, error.Message);
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        // Kestrel needs the private key in a form it can use on every platform: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }
}
