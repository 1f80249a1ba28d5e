using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Neo4j.Tests.Fakes;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>The engine (SQLite log and source) replicating into Neo4j through <c>AddNeo4jGraphStore</c>, with faults.</summary>
public sealed class Neo4jEngineTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();
    private FakeNeo4jServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeNeo4jServer.StartAsync();

    public async Task DisposeAsync()
    {
        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        _dir.Dispose();
        Assert.True(violations.Length == 0, "Requests the fake rejected:\n" + string.Join('\n', violations));
    }

    private Task<TestEngine> Start() => TestEngine.StartAsync(_dir.Path, b => b.AddNeo4jGraphStore(o =>
    {
        o.BaseAddress = _server.BaseAddress;
        o.User = "neo4j";
        o.Password = "secret";
        o.MaxRetryAttempts = 1;
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(2);
    }));

    private static SyncEntity Item(int i, string text = "hello") => SyncEntity.FromJson(
        new EntityKey("items", "item-" + i), $"{{\"i\":{i},\"text\":\"{text}\"}}", new float[] { i, 1, 0, -1 },
        [new SyncEdge("NEXT", new EntityKey("items", "item-" + (i + 1))), new SyncEdge("ROOT", new EntityKey("items", "root"))]);

    private static async Task AssertReplicaMatchesSource(TestEngine engine, int count)
    {
        var store = engine.Services.GetRequiredKeyedService<Neo4jGraphStore>("neo4j");
        var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
        Assert.Equal(count, await store.CountAsync("items", CancellationToken.None));
        var digests = new Dictionary<string, EntityDigest>(StringComparer.Ordinal);
        await foreach (var d in store.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            digests.Add(d.Key.Id, d);
        }

        Assert.Equal(count, digests.Count);
        for (var i = 0; i < count; i++)
        {
            var source = (await docs.ReadAsync(Item(i).Key, CancellationToken.None))!;
            var digest = digests[source.Entity.Key.Id];
            Assert.Equal(source.Version, digest.Version);
            Assert.Equal(source.ContentHash, digest.RecordedHash);
            Assert.Equal(ProjectionHash.Compute(source.Entity, StoreKind.Graph), digest.ProjectionHash);
        }
    }

    [Fact]
    public async Task Writes_and_deletes_reach_Neo4j_with_their_edges()
    {
        await using var engine = await Start();
        var last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 300).Select(i => Item(i)).ToArray());
        var deleted = await engine.Manager.DeleteAsync(new EntityKey("items", "item-299"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(deleted, Wait));

        await AssertReplicaMatchesSource(engine, 299);
        var store = engine.Services.GetRequiredKeyedService<Neo4jGraphStore>("neo4j");
        var root = await store.GetNeighborsAsync(new EntityKey("items", "root"), "ROOT", EdgeDirection.Incoming, CancellationToken.None);
        Assert.Equal(299, root.Count);
    }

    [Fact]
    public async Task Neo4j_down_for_a_while_loses_nothing_and_the_cursor_catches_up()
    {
        await using var engine = await Start();
        var manager = engine.Manager;
        _server.Faults.Down = true;
        SyncTicket last = default;
        for (var round = 0; round < 4; round++)
        {
            last = await manager.WriteBatchAsync(Enumerable.Range(0, 200).Select(i => Item(i, "round" + round)).ToArray());
        }

        Assert.Equal(SyncWaitOutcome.TimedOut, await manager.WaitForSyncAsync(last, TimeSpan.FromMilliseconds(300)));
        var stalled = (await manager.GetStatisticsAsync()).Single(s => s.Store == "neo4j");
        Assert.True(stalled.LagChanges > 0);

        _server.Faults.Down = false;
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, Wait));
        var caughtUp = (await manager.GetStatisticsAsync()).Single(s => s.Store == "neo4j");
        Assert.True(caughtUp.Cursor > stalled.Cursor);
        Assert.Equal(0, caughtUp.LagChanges);
        await AssertReplicaMatchesSource(engine, 200);
    }

    [Fact]
    public async Task Transient_errors_503s_and_errors_inside_202_answers_lose_nothing()
    {
        await using var engine = await Start();
        _server.Faults.Status(503, count: 4);
        _server.Faults.Status(400, count: 3, code: "Neo.TransientError.Transaction.DeadlockDetected");
        _server.Faults.StreamingError("Neo.TransientError.General.DatabaseUnavailable");
        var last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 150).Select(i => Item(i)).ToArray());

        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
        await AssertReplicaMatchesSource(engine, 150);
        Assert.Equal(0, (await engine.Manager.GetStatisticsAsync()).Single(s => s.Store == "neo4j").DeadLetters);
    }

    [Fact]
    public async Task A_restarted_engine_resumes_from_its_cursor_after_an_outage()
    {
        SyncTicket last;
        await using (var engine = await Start())
        {
            await engine.Manager.WaitForSyncAsync(await engine.Manager.WriteAsync(Item(0)), Wait);
            _server.Faults.Down = true;
            last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 100).Select(i => Item(i, "while-down")).ToArray());
            Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(last, TimeSpan.FromMilliseconds(200)));
        }

        _server.Faults.Down = false;
        await using (var engine = await Start())
        {
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
            await AssertReplicaMatchesSource(engine, 100);
        }
    }

    [Fact]
    public async Task Registration_is_harmless_twice_and_bad_options_fail_at_start()
    {
        var services = new ServiceCollection();
        var builder = services.AddCrossStoreSync(o => o.AddCollection("items", 4));
        builder.AddNeo4jGraphStore(o => o.BaseAddress = _server.BaseAddress);
        builder.AddNeo4jGraphStore(o => o.BaseAddress = _server.BaseAddress);
        Assert.Single(services, s => s.ServiceType == typeof(Neo4jGraphStore) && Equals(s.ServiceKey, "neo4j"));

        await using var provider = services.AddCrossStoreSync().AddNeo4jGraphStore(o => { o.BaseAddress = _server.BaseAddress; o.Database = "no/slash"; }, "broken").Services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<Neo4jGraphStoreOptions>>().Get("broken"));
        Assert.Contains("no/slash", error.Message, StringComparison.Ordinal);
    }
}
