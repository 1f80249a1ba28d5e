using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Qdrant.Tests.Fakes;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>Qdrant-specific behaviour: point ids, collection checks, error mapping and the adapter's own retries.</summary>
public sealed class QdrantStoreTests : IAsyncLifetime
{
    private static readonly CollectionDefinition[] Items = [new("items", 4, VectorDistance.Cosine)];
    private readonly TestHttpClientFactory _clients = new();
    private FakeQdrantServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeQdrantServer.StartAsync();

    public async Task DisposeAsync()
    {
        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        _clients.Dispose();
        Assert.True(violations.Length == 0, "Requests the OpenAPI document rejects:\n" + string.Join('\n', violations));
    }

    private QdrantVectorStore Store(Action<QdrantVectorStoreOptions>? configure = null)
    {
        var options = new QdrantVectorStoreOptions { BaseAddress = _server.BaseAddress, RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        configure?.Invoke(options);
        return new QdrantVectorStore(_clients, options);
    }

    private static EntityChange Upsert(string id, long version, float[]? vector = null) =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), "{}", vector ?? [1, 2, 3, 4]), new HlcTimestamp(1_700_000_000_000 + version, 0, 1));

    [Theory]
    [InlineData("item-1", "5f424a72-a3d8-57e8-9970-10a1a67c85cd")]
    [InlineData("ünïcødé-日本語-🙂", "d6caf1c4-5360-5316-b750-a9dffccd5088")]
    public void Point_ids_are_RFC_9562_version_5_uuids_of_the_entity_id(string id, string expected)
    {
        // Expected values from Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/crossstoresync/point-ids"), id).
        Assert.Equal(expected, PointIds.For(id));
        Assert.Equal(5, PointIds.VersionOf(Guid.Parse(PointIds.For(id))));
    }

    [Theory]
    [InlineData("{5F424A72-A3D8-57E8-9970-10A1A67C85CD}")]
    [InlineData("5f424a72a3d857e8997010a1a67c85cd")]
    [InlineData("urn:uuid:5f424a72-a3d8-57e8-9970-10a1a67c85cd")]
    public void Returned_ids_are_normalised_to_the_lowercase_hyphenated_form(string returned)
    {
        var normalized = PointIds.Normalize(returned.Replace("urn:uuid:", string.Empty, StringComparison.Ordinal));
        Assert.Equal("5f424a72-a3d8-57e8-9970-10a1a67c85cd", normalized);
    }

    [Fact]
    public async Task Initialize_creates_the_collection_with_a_named_vector_and_the_sync_indexes_and_is_idempotent()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.InitializeAsync(Items, CancellationToken.None);

        Assert.Equal(1, _server.Requests["PUT /collections/items"]);
        Assert.Equal(8, _server.Requests["PUT /collections/items/index"]);
    }

    [Fact]
    public async Task A_collection_that_exists_with_another_size_fails_clearly()
    {
        await Store().InitializeAsync(Items, CancellationToken.None);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () =>
            await Store().InitializeAsync([new CollectionDefinition("items", 8, VectorDistance.Cosine)], CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Contains("size 4", error.Message, StringComparison.Ordinal);
        Assert.Contains("size 8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_collection_that_exists_with_another_distance_fails_clearly()
    {
        await Store().InitializeAsync(Items, CancellationToken.None);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () =>
            await Store().InitializeAsync([new CollectionDefinition("items", 4, VectorDistance.Dot)], CancellationToken.None));
        Assert.Contains("distance Cosine", error.Message, StringComparison.Ordinal);
        Assert.Contains("distance Dot", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_collection_created_elsewhere_with_an_unnamed_vector_fails_clearly()
    {
        _server.CreateUnnamedCollection("items", 4, "Cosine");
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store().InitializeAsync(Items, CancellationToken.None));
        Assert.Contains("unnamed vector", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_older_than_1_17_is_refused_at_start()
    {
        _server.Version = "1.16.3";
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store().InitializeAsync(Items, CancellationToken.None));
        Assert.Contains("1.16.3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_api_key_is_a_permanent_error_with_the_plain_text_message()
    {
        await using var secured = await FakeQdrantServer.StartAsync(apiKey: "right");
        var store = new QdrantVectorStore(_clients, new QdrantVectorStoreOptions { BaseAddress = secured.BaseAddress, ApiKey = "wrong" });
        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.InitializeAsync(Items, CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Equal(401, error.StatusCode);
        Assert.Equal("Must provide an API key or an Authorization bearer token", error.ServerMessage);
    }

    [Fact]
    public async Task A_collection_deleted_behind_the_library_gives_a_permanent_404_with_Qdrants_message()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.DropCollection("items");

        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(404, error.StatusCode);
        Assert.Equal("Not found: Collection `items` doesn't exist!", error.ServerMessage);
        Assert.Equal("apply", error.Operation);
    }

    [Fact]
    public async Task A_burst_of_503_is_retried_inside_the_call()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.Faults.Status(503, count: 3);

        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
    }

    [Fact]
    public async Task A_503_burst_longer_than_the_retries_surfaces_as_a_transient_error()
    {
        var store = Store(o => o.MaxRetryAttempts = 2);
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.Faults.Status(503, count: 3);

        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(503, error.StatusCode);
        Assert.Equal("Service unavailable: No active replica", error.ServerMessage);
    }

    [Fact]
    public async Task A_429_waits_for_Retry_After_before_retrying()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.Faults.Status(429, retryAfter: TimeSpan.FromSeconds(1));

        var started = TimeProvider.System.GetTimestamp();
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromSeconds(0.9), "The retry did not wait for Retry-After.");
    }

    [Fact]
    public async Task A_hung_request_times_out_and_is_retried()
    {
        var store = Store(o => o.RequestTimeout = TimeSpan.FromMilliseconds(300));
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.Faults.Slow(TimeSpan.FromSeconds(30));

        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
    }

    [Fact]
    public async Task A_server_that_is_down_gives_a_transient_error()
    {
        var store = Store(o => o.MaxRetryAttempts = 1);
        await store.InitializeAsync(Items, CancellationToken.None);
        _server.Faults.Down = true;

        var error = await Assert.ThrowsAsync<QdrantException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Null(error.StatusCode);
    }

    [Fact]
    public async Task Cosine_vectors_are_normalised_by_Qdrant_but_digests_still_match_the_source()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var change = Upsert("a", 1, [3, 0, 4, 0]);
        await store.ApplyAsync([change], CancellationToken.None);

        var stored = _server.Point("items", PointIds.For("a"))!.Vectors["embedding"];
        Assert.Equal([0.6f, 0f, 0.8f, 0f], stored);
        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.Equal(Hashing.ProjectionHash.Compute(change.Entity!, StoreKind.Vector), digest.ProjectionHash);
    }

    [Fact]
    public async Task Editing_the_raw_copy_in_the_payload_is_detected_as_drift()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var change = Upsert("a", 1, [3, 0, 4, 0]);
        await store.ApplyAsync([change], CancellationToken.None);
        var sync = _server.Point("items", PointIds.For("a"))!.Payload["_sync"]!.AsObject();
        sync["raw"] = QdrantRecord.EncodeVector([6, 0, 8, 1]);

        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.NotEqual(Hashing.ProjectionHash.Compute(change.Entity!, StoreKind.Vector), digest.ProjectionHash);
    }

    [Fact]
    public async Task A_delete_leaves_a_versioned_tombstone_point_without_a_vector()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Delete(new EntityKey("items", "a"), new HlcTimestamp(1_700_000_000_000 + 5, 0, 1))], CancellationToken.None);

        var point = _server.Point("items", PointIds.For("a"))!;
        Assert.Empty(point.Vectors);
        Assert.True(point.Payload["_sync"]!["deleted"]!.GetValue<bool>());
        Assert.False(point.Payload["_sync"]!["live"]!.GetValue<bool>());
        Assert.Equal(new HlcTimestamp(1_700_000_000_000 + 5, 0, 1).Value, point.Payload["_sync"]!["version"]!.GetValue<long>());
    }

    [Fact]
    public async Task Versions_beyond_2_pow_53_are_guarded_exactly()
    {
        // HLC versions are 63-bit; two versions one apart must still be ordered (a double would merge them).
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var high = new HlcTimestamp(long.MaxValue - 10);
        var higher = new HlcTimestamp(long.MaxValue - 9);
        var key = new EntityKey("items", "big");
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, "{}", new float[] { 1, 0, 0, 0 }), higher)], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, "{}", new float[] { 0, 1, 0, 0 }), high)], CancellationToken.None);

        Assert.Equal(higher, Assert.Single(await store.ReadDigestsAsync("items", ["big"], CancellationToken.None)).Version);
    }

    [Theory]
    [InlineData(3, 5)] // the second writer's change is older than ours: our write must still win, after a re-check
    [InlineData(7, 7)] // it is newer: ours must not overwrite it
    public async Task A_second_writer_between_read_and_write_cannot_make_an_older_change_win(long intruderVersion, long expectedVersion)
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);

        // Between the adapter's version read and its write, another writer replaces the point.
        _server.BeforeNextUpsert = server =>
        {
            var point = server.Point("items", PointIds.For("a"))!;
            point.Payload["_sync"]!["version"] = new HlcTimestamp(1_700_000_000_000 + intruderVersion, 0, 1).Value;
        };
        await store.ApplyAsync([Upsert("a", 5)], CancellationToken.None);

        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.Equal(new HlcTimestamp(1_700_000_000_000 + expectedVersion, 0, 1), digest.Version);
        Assert.Null(_server.BeforeNextUpsert);
    }

    [Fact]
    public void Options_are_validated_with_the_bad_value_quoted()
    {
        var error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(_clients, new QdrantVectorStoreOptions { BaseAddress = new Uri("ftp://x/") }));
        Assert.Contains("ftp://x/", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(_clients, new QdrantVectorStoreOptions { BaseAddress = _server.BaseAddress, BatchSize = 0 }));
        Assert.Contains("BatchSize is 0", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>The OpenAPI validator itself must reject what Qdrant's schema rejects, or the validation proves nothing.</summary>
public sealed class OpenApiRequestValidatorTests
{
    private static readonly OpenApiRequestValidator Validator = OpenApiRequestValidator.Load(Path.Combine(AppContext.BaseDirectory, "OpenApi", "qdrant-openapi-1.19.json"));

    private static List<string> Check(string method, string path, string? body, params string[] query)
    {
        using var document = body is null ? null : JsonDocument.Parse(body);
        return Validator.Validate(method, path, query, document?.RootElement);
    }

    [Theory]
    [InlineData("PUT", "/collections/c/points", """{"points":[{"id":"5f424a72-a3d8-57e8-9970-10a1a67c85cd","vector":{"v":[1,0.5]},"payload":{"a":1}}],"update_filter":{"should":[{"must":[{"has_id":["5f424a72-a3d8-57e8-9970-10a1a67c85cd"]},{"key":"_sync.version","match":{"value":9007199254740993}}]}]}}""")]
    [InlineData("POST", "/collections/c/points/scroll", """{"limit":10,"offset":"5f424a72-a3d8-57e8-9970-10a1a67c85cd","filter":{"must":[{"key":"b","range":{"gte":0,"lte":4294967295}}]},"with_payload":["_sync"],"with_vector":["v"]}""")]
    [InlineData("POST", "/collections/c/points/query", """{"query":[1,0],"using":"v","limit":3,"with_payload":["_sync.key"],"with_vector":false}""")]
    [InlineData("PUT", "/collections/c", """{"vectors":{"v":{"size":4,"distance":"Cosine"}}}""")]
    public void Requests_of_the_documented_shape_pass(string method, string path, string body) =>
        Assert.Empty(Check(method, path, body));

    [Theory]
    [InlineData("PUT", "/collections/c/points", """{"points":[{"id":"item-1","vector":{"v":[1]}}]}""", "is not a UUID")]
    [InlineData("PUT", "/collections/c/points", """{"points":[{"id":-1,"vector":{"v":[1]}}]}""", "matches no branch")]
    [InlineData("PUT", "/collections/c/points", """{"points":[{"id":1}]}""", "required property 'vector'")]
    [InlineData("POST", "/collections/c/points/scroll", """{"limit":0}""", "below the minimum")]
    [InlineData("POST", "/collections/c/points/scroll", """{"filter":{"must":[],"typo":1}}""", "property is not allowed")]
    [InlineData("PUT", "/collections/c", """{"vectors":{"v":{"size":4,"distance":"Cosinus"}}}""", "matches no branch")]
    [InlineData("POST", "/collections/c/points/search/everything", """{}""", "no path")]
    [InlineData("PATCH", "/collections/c/points/scroll", """{}""", "not defined")]
    public void Requests_the_schema_rejects_fail(string method, string path, string body, string expected)
    {
        var errors = Check(method, path, body);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(200, """{"result":{"points":[{"id":"5f424a72-a3d8-57e8-9970-10a1a67c85cd","payload":{}}],"next_page_offset":null},"status":"ok","time":0.1}""", null)]
    [InlineData(200, """{"result":{"next_page_offset":null},"status":"ok","time":0.1}""", "required property 'points'")]
    [InlineData(200, """{"result":{"points":[{"payload":{}}]},"status":"ok","time":0.1}""", "required property 'id'")]
    [InlineData(404, """{"status":{"error":"Not found: Collection `c` doesn't exist!"},"time":0.0}""", null)]
    public void Responses_are_checked_against_the_declared_schema(int status, string body, string? expected)
    {
        using var document = JsonDocument.Parse(body);
        var errors = Validator.ValidateResponse("POST", "/collections/c/points/scroll", status, document.RootElement);
        if (expected is null)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Undeclared_query_parameters_fail() =>
        Assert.Contains(Check("PUT", "/collections/c/points", """{"points":[]}""", "wait", "fast"), e => e.Contains("'fast'", StringComparison.Ordinal));
}
