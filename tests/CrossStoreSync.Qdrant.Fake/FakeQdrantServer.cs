using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using CrossStoreSync.Qdrant.Fake.Api;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>
/// TEST CODE — an in-process stand-in for a Qdrant server's gRPC API (no real server can be installed here): Kestrel
/// speaking HTTP/2 on 127.0.0.1, serving the services Grpc.Tools generated from the schema embedded in Qdrant.Client
/// (Protos/, written by eng/qdrant-grpc/export.sh), so the fake and the client cannot disagree on message shapes. It
/// implements the calls the adapter makes — health check, collection info and create, upsert (with the update
/// filter), get, scroll (paged by id), count, query (nearest), delete, payload index — with Qdrant's behaviour: cosine
/// vectors normalised on upload, vectors answered in the <c>dense</c> field, and errors with Qdrant's status codes and
/// messages (NotFound for a missing collection, AlreadyExists, InvalidArgument for a wrong dimension or a point without
/// vectors, Unauthenticated for a missing or wrong API key). Faults are scripted through <see cref="Faults"/>.
/// </summary>
public sealed class FakeQdrantServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, FakeCollection> _collections = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private WebApplication _app = null!;
    private Action<FakeQdrantServer>? _beforeNextUpsert;
    private long _operationId;

    private FakeQdrantServer(string? apiKey) => ApiKey = apiKey;

    /// <summary>The gRPC address, <c>http://127.0.0.1:port</c> (or <c>https://</c> with a certificate).</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The API key every call but the health check must carry, or null for none.</summary>
    public string? ApiKey { get; }

    /// <summary>Scripted faults, consumed one per call.</summary>
    public FakeFaults Faults { get; } = new();

    /// <summary>Calls the fake does not implement, and its own failures.</summary>
    public IReadOnlyCollection<string> Violations => _violations;

    /// <summary>Calls received per "/qdrant.Service/Method collection".</summary>
    public IReadOnlyDictionary<string, int> Requests => _requests;

    /// <summary>The version the health check reports.</summary>
    public string Version { get; set; } = "1.19.0";

    /// <summary>Runs once before the next upsert is applied: a second writer acting between the adapter's read and write.</summary>
    public Action<FakeQdrantServer>? BeforeNextUpsert { get => _beforeNextUpsert; set => _beforeNextUpsert = value; }

    /// <summary>Starts a fake on a free port of 127.0.0.1: plaintext HTTP/2, or TLS with <paramref name="certificate"/>.</summary>
    public static async Task<FakeQdrantServer> StartAsync(string? apiKey = null, X509Certificate2? certificate = null)
    {
        var server = new FakeQdrantServer(apiKey);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        builder.Services.AddGrpc(o => o.Interceptors.Add<FakeInterceptor>(server));
        builder.Services.AddSingleton(new FakeQdrantService(server));
        builder.Services.AddSingleton(new FakeCollectionsService(server));
        builder.Services.AddSingleton(new FakePointsService(server));
        var app = builder.Build();
        app.MapGrpcService<FakeQdrantService>();
        app.MapGrpcService<FakeCollectionsService>();
        app.MapGrpcService<FakePointsService>();
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        server._app = app;
        server.Address = new Uri($"{(certificate is null ? "http" : "https")}://127.0.0.1:{address.Port}");
        return server;
    }

    /// <summary>Direct access to a stored point, for tests that edit data behind the library's back.</summary>
    public FakePoint? Point(string collection, string pointId) =>
        _collections.TryGetValue(collection, out var c) && c.Points.TryGetValue(pointId, out var p) ? p : null;

    /// <summary>The number of points a collection holds (tombstones included), or null when it does not exist.</summary>
    public int? PointCount(string collection) => _collections.TryGetValue(collection, out var c) ? c.Points.Count : null;

    /// <summary>The payload indexes of a collection.</summary>
    public IReadOnlyDictionary<string, FieldType> Indexes(string collection) => Collection(collection).Indexes;

    /// <summary>Drops a collection behind the library's back.</summary>
    public void DropCollection(string collection) => _collections.TryRemove(collection, out _);

    /// <summary>Creates a collection with a single unnamed vector, as another tool might have.</summary>
    public void CreateUnnamedCollection(string name, int size, Distance distance) =>
        _collections[name] = new FakeCollection(new Dictionary<string, (int, Distance)> { [string.Empty] = (size, distance) });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal FakeCollection Collection(string name) =>
        _collections.TryGetValue(name, out var c) ? c : throw new RpcException(new Status(StatusCode.NotFound, $"Not found: Collection `{name}` doesn't exist!"));

    internal void AddCollection(string name, Dictionary<string, (int, Distance)> vectors)
    {
        if (!_collections.TryAdd(name, new FakeCollection(vectors)))
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"Wrong input: Collection `{name}` already exists!"));
        }
    }

    internal Action<FakeQdrantServer>? TakeBeforeNextUpsert() => Interlocked.Exchange(ref _beforeNextUpsert, null);

    internal ulong NextOperationId() => (ulong)Interlocked.Increment(ref _operationId);

    internal void Count(string method, string? collection) => _requests.AddOrUpdate(collection is null ? method : method + " " + collection, 1, (_, n) => n + 1);

    internal void Violation(string text) => _violations.Enqueue(text);
}
