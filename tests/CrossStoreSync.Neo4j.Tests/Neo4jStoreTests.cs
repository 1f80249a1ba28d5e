using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Neo4j.Tests.Fakes;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>Neo4j-specific behaviour: placeholders, tombstones, bookmarks, error mapping and the adapter's retries.</summary>
public sealed class Neo4jStoreTests : IAsyncLifetime
{
    private static readonly CollectionDefinition[] Collections = [new("items", 4, VectorDistance.Cosine), new("people", null, VectorDistance.Cosine)];
    private readonly TestHttpClientFactory _clients = new();
    private FakeNeo4jServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeNeo4jServer.StartAsync();

    public async Task DisposeAsync()
    {
        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        _clients.Dispose();
        Assert.True(violations.Length == 0, "Requests the fake rejected:\n" + string.Join('\n', violations));
    }

    private async Task<Neo4jGraphStore> Store(Action<Neo4jGraphStoreOptions>? configure = null, bool initialize = true)
    {
        var options = new Neo4jGraphStoreOptions { BaseAddress = _server.BaseAddress, User = "neo4j", Password = "secret", RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        configure?.Invoke(options);
        var store = new Neo4jGraphStore(_clients, options);
        if (initialize)
        {
            await store.InitializeAsync(Collections, CancellationToken.None);
        }

        return store;
    }

    private static HlcTimestamp V(long ms) => new(1_700_000_000_000 + ms, 0, 1);

    private static EntityChange Upsert(string id, long version, params SyncEdge[] edges) =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), "{}", new float[] { 1, 0.5f, 0, -2 }, edges), V(version));

    [Fact]
    public async Task Server_error_text_with_line_breaks_and_escape_sequences_is_escaped_in_the_message()
    {
        var store = await Store(o => o.MaxRetryAttempts = 0);
        _server.Faults.Status(400, code: "Neo.ClientError.Statement.SyntaxError", message: "bad\n2030-01-01 ERROR forged\u001b[31m");

        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));

        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain('\u001b', error.Message);
        Assert.Contains(@"'bad\n2030-01-01 ERROR forged\e[31m'", error.Message, StringComparison.Ordinal);
        Assert.Equal("bad\n2030-01-01 ERROR forged\u001b[31m", error.ServerMessage);
    }

    [Fact]
    public async Task Retry_After_of_a_429_travels_on_the_error_capped_at_MaxRetryAfter_and_the_stores_retry_waits_for_it()
    {
        var store = await Store(o => o.MaxRetryAttempts = 0);
        _server.Faults.Status(429, retryAfter: TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(TimeSpan.FromSeconds(2), error.RetryAfter);

        var capped = await Store(o => { o.MaxRetryAttempts = 0; o.MaxRetryAfter = TimeSpan.FromMilliseconds(500); });
        _server.Faults.Status(503, retryAfter: TimeSpan.FromHours(1));
        Assert.Equal(TimeSpan.FromMilliseconds(500), (await Assert.ThrowsAsync<Neo4jException>(async () => await capped.ApplyAsync([Upsert("a", 1)], CancellationToken.None))).RetryAfter);

        var retrying = await Store(o => o.MaxRetryAttempts = 1);
        _server.Faults.Status(429, retryAfter: TimeSpan.FromSeconds(1));
        var started = TimeProvider.System.GetTimestamp();
        await retrying.ApplyAsync([Upsert("b", 1)], CancellationToken.None);
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromSeconds(0.95), "The store's own retry did not wait for Retry-After.");
    }

    [Fact]
    public async Task Initialize_creates_a_key_constraint_and_a_bucket_index_per_collection()
    {
        await Store();
        Assert.Equal(4, _server.Graph.Schema.Count);
        Assert.Contains("CREATE CONSTRAINT css_people_id IF NOT EXISTS FOR (n:`people`) REQUIRE n.id IS UNIQUE", _server.Graph.Schema);
    }

    [Fact]
    public async Task An_edge_target_is_a_placeholder_until_written_and_is_neither_counted_nor_digested()
    {
        var store = await Store();
        await store.ApplyAsync([Upsert("a", 1, new SyncEdge("KNOWS", new EntityKey("people", "bob")))], CancellationToken.None);

        var placeholder = _server.Graph.Node("people", "bob");
        Assert.NotNull(placeholder);
        Assert.Contains("SyncEntity", placeholder.Labels);
        Assert.Equal(0, await store.CountAsync("people", CancellationToken.None));
        Assert.Empty(await store.ReadDigestsAsync("people", ["bob"], CancellationToken.None));
        Assert.False(Assert.Single(await store.GetNeighborsAsync(new EntityKey("items", "a"), null, EdgeDirection.Outgoing, CancellationToken.None)).Exists);

        // The later upsert fills the same node in: the edge now leads to an existing entity.
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("people", "bob"), "{}"), V(2))], CancellationToken.None);
        Assert.Same(placeholder, _server.Graph.Node("people", "bob"));
        Assert.Equal(1, await store.CountAsync("people", CancellationToken.None));
        Assert.True(Assert.Single(await store.GetNeighborsAsync(new EntityKey("items", "a"), null, EdgeDirection.Outgoing, CancellationToken.None)).Exists);
    }

    [Fact]
    public async Task A_delete_keeps_a_versioned_tombstone_and_the_edges_other_entities_declare()
    {
        var store = await Store();
        await store.ApplyAsync([Upsert("a", 1, new SyncEdge("KNOWS", new EntityKey("items", "b"))), Upsert("b", 1, new SyncEdge("LIKES", new EntityKey("items", "c")))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Delete(new EntityKey("items", "b"), V(5))], CancellationToken.None);

        var tombstone = _server.Graph.Node("items", "b")!;
        Assert.True(tombstone.Properties["_sync_deleted"]!.GetValue<bool>());
        Assert.Equal(V(5).Value, tombstone.Properties["_sync_version"]!.GetValue<long>());
        Assert.Empty(await store.GetNeighborsAsync(new EntityKey("items", "b"), null, EdgeDirection.Outgoing, CancellationToken.None));
        var fromA = Assert.Single(await store.GetNeighborsAsync(new EntityKey("items", "a"), null, EdgeDirection.Outgoing, CancellationToken.None));
        Assert.False(fromA.Exists);

        // a's digest still matches a's own edges: deleting b did not change a.
        var a = Upsert("a", 1, new SyncEdge("KNOWS", new EntityKey("items", "b")));
        Assert.Equal(Hashing.ProjectionHash.Compute(a.Entity!, StoreKind.Graph), Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None)).ProjectionHash);
    }

    [Fact]
    public async Task Edge_properties_and_duplicate_edges_round_trip_into_the_digest()
    {
        var store = await Store();
        var props = Encoding.UTF8.GetBytes("{\"w\": 1.50, \"t\":\"ü\"}");
        var change = Upsert("a", 1, new SyncEdge("KNOWS", new EntityKey("items", "b"), props), new SyncEdge("KNOWS", new EntityKey("items", "b"), props));
        await store.ApplyAsync([change], CancellationToken.None);

        Assert.Equal(2, _server.Graph.Relationships.Count);
        Assert.Equal(Hashing.ProjectionHash.Compute(change.Entity!, StoreKind.Graph), Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None)).ProjectionHash);
    }

    [Fact]
    public async Task Vectors_are_stored_as_float_lists()
    {
        var store = await Store();
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        var embedding = _server.Graph.Node("items", "a")!.Properties["embedding"]!.AsArray();
        Assert.Equal([1.0, 0.5, 0.0, -2.0], embedding.Select(x => x!.GetValue<double>()).ToArray());
    }

    [Fact]
    public async Task Requests_carry_the_bookmarks_of_the_latest_answer()
    {
        var store = await Store();
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        var afterWrite = _server.LatestBookmark;
        Assert.Equal([afterWrite], store.Bookmarks);

        await store.CountAsync("items", CancellationToken.None);
        Assert.Equal([afterWrite], _server.BookmarksReceived.Last());
    }

    [Fact]
    public async Task Bad_credentials_are_a_permanent_401()
    {
        var store = await Store(o => o.Password = "wrong", initialize: false);
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.InitializeAsync(Collections, CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(401, error.StatusCode);
        Assert.Equal("Neo.ClientError.Security.Unauthorized", error.Code);
    }

    [Fact]
    public async Task An_unknown_database_is_a_permanent_404_that_names_it()
    {
        var store = await Store(o => o.Database = "missing", initialize: false);
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.InitializeAsync(Collections, CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(404, error.StatusCode);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transient_error_code_in_a_400_is_retried()
    {
        var store = await Store();
        _server.Faults.Status(400, count: 2, code: "Neo.TransientError.General.DatabaseUnavailable");
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_client_error_code_is_permanent_with_Neo4js_message()
    {
        var store = await Store(o => o.MaxRetryAttempts = 3);
        _server.Faults.Status(400, code: "Neo.ClientError.Schema.ConstraintValidationFailed");
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal("Neo.ClientError.Schema.ConstraintValidationFailed", error.Code);
        Assert.Equal("Fake Neo.ClientError.Schema.ConstraintValidationFailed", error.ServerMessage);
    }

    [Fact]
    public async Task Errors_inside_a_202_answer_are_detected_and_the_write_retried()
    {
        var store = await Store(o => o.MaxRetryAttempts = 0);
        _server.Faults.StreamingError("Neo.TransientError.Transaction.DeadlockDetected");
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(202, error.StatusCode);
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));

        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_503_burst_and_a_hung_request_are_retried_inside_the_call()
    {
        var store = await Store(o => o.RequestTimeout = TimeSpan.FromMilliseconds(300));
        _server.Faults.Status(503, count: 2);
        _server.Faults.Slow(TimeSpan.FromSeconds(30));
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_server_that_is_down_gives_a_transient_error()
    {
        var store = await Store(o => o.MaxRetryAttempts = 1);
        _server.Faults.Down = true;
        var error = await Assert.ThrowsAsync<Neo4jException>(async () => await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Null(error.StatusCode);
    }

    [Fact]
    public async Task RemoveByOrigin_turns_a_node_others_point_at_into_a_placeholder()
    {
        var store = await Store();
        await store.ApplyAsync([Upsert("m", 1).WithOrigin("mig"), Upsert("x", 1, new SyncEdge("REF", new EntityKey("items", "m")))], CancellationToken.None);

        Assert.Equal(1, await store.RemoveByOriginAsync("items", "mig", CancellationToken.None));
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
        Assert.False(Assert.Single(await store.GetNeighborsAsync(new EntityKey("items", "x"), "REF", EdgeDirection.Outgoing, CancellationToken.None)).Exists);

        // No tombstone: the same version can be written again.
        await store.ApplyAsync([Upsert("m", 1)], CancellationToken.None);
        Assert.Equal(2, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_collection_named_like_the_common_label_is_refused()
    {
        var store = await Store(initialize: false);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.InitializeAsync([new CollectionDefinition("SyncEntity", null, VectorDistance.Cosine)], CancellationToken.None));
        Assert.Contains("SyncEntity", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_are_validated_with_the_bad_value_quoted()
    {
        var error = Assert.Throws<ArgumentException>(() => new Neo4jGraphStore(_clients, new Neo4jGraphStoreOptions { BaseAddress = _server.BaseAddress, Database = "bad/db" }));
        Assert.Contains("bad/db", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new Neo4jGraphStore(_clients, new Neo4jGraphStoreOptions { BaseAddress = _server.BaseAddress, User = "neo4j" }));
        Assert.Contains("Password", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new Neo4jGraphStore(_clients, new Neo4jGraphStoreOptions { BaseAddress = _server.BaseAddress, User = "u", Password = "p", BearerToken = "t" }));
        Assert.Contains("BearerToken", error.Message, StringComparison.Ordinal);
    }
}
