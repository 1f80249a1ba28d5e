using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Qdrant.Client;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>The engine (SQLite log and source) replicating into Qdrant through <c>AddQdrantVectorStore</c>, with faults.</summary>
public sealed class QdrantEngineTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();
    private FakeQdrantServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeQdrantServer.StartAsync(apiKey: "k");

    public async Task DisposeAsync()
    {
        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        _dir.Dispose();
        Assert.True(violations.Length == 0, "Calls the fake does not implement:\n" + string.Join('\n', violations));
    }

    private Task<TestEngine> Start() => TestEngine.StartAsync(_dir.Path, b => b.AddQdrantVectorStore(o =>
    {
        o.Address = _server.Address;
        o.ApiKey = "k";
        o.MaxRetryAttempts = 1;
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(2);
        o.MaxRetryAfter = TimeSpan.FromSeconds(2);
    }));

    private static SyncEntity Item(int i, string text = "hello") => SyncEntity.FromJson(
        new EntityKey("items", "item-" + i), $"{{\"i\":{i},\"text\":\"{text}\"}}", new float[] { i, 1, 0, -1 });

    private static async Task AssertReplicaMatchesSource(TestEngine engine, int count)
    {
        var store = engine.Services.GetRequiredKeyedService<QdrantVectorStore>("qdrant");
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
            Assert.Equal(ProjectionHash.Compute(source.Entity, StoreKind.Vector), digest.ProjectionHash);
        }
    }

    [Fact]
    public async Task Writes_and_deletes_reach_Qdrant_and_search_finds_them()
    {
        await using var engine = await Start();
        var last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 300).Select(i => Item(i)).ToArray());
        var deleted = await engine.Manager.DeleteAsync(new EntityKey("items", "item-299"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(deleted, Wait));

        await AssertReplicaMatchesSource(engine, 299);
        var store = engine.Services.GetRequiredKeyedService<QdrantVectorStore>("qdrant");
        var hit = Assert.Single(await store.SearchAsync("items", new float[] { 0, 1, 0, -1 }, 1, CancellationToken.None));
        Assert.Equal("item-0", hit.Key.Id);
    }

    [Fact]
    public async Task Qdrant_down_for_a_while_loses_nothing_and_the_cursor_catches_up()
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
        var stalled = (await manager.GetStatisticsAsync()).Single(s => s.Store == "qdrant");
        Assert.True(stalled.LagChanges > 0);

        _server.Faults.Down = false;
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, Wait));
        var caughtUp = (await manager.GetStatisticsAsync()).Single(s => s.Store == "qdrant");
        Assert.True(caughtUp.Cursor > stalled.Cursor);
        Assert.Equal(0, caughtUp.LagChanges);
        Assert.Equal(0, caughtUp.DeadLetters);
        await AssertReplicaMatchesSource(engine, 200);
    }

    [Fact]
    public async Task Bursts_of_Unavailable_ResourceExhausted_with_retry_after_and_dropped_streams_lose_nothing()
    {
        await using var engine = await Start();
        _server.Faults.Status(StatusCode.Unavailable, count: 6);
        _server.Faults.Status(StatusCode.ResourceExhausted, retryAfter: TimeSpan.FromSeconds(1));
        _server.Faults.DropStream(count: 2);
        _server.Faults.Status(StatusCode.Aborted);
        _server.Faults.Status(StatusCode.DeadlineExceeded, count: 3);
        var last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 150).Select(i => Item(i)).ToArray());

        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
        await AssertReplicaMatchesSource(engine, 150);
        Assert.Equal(0, (await engine.Manager.GetStatisticsAsync()).Single(s => s.Store == "qdrant").DeadLetters);
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
        builder.AddQdrantVectorStore(o => o.Address = _server.Address);
        builder.AddQdrantVectorStore(o => o.Address = _server.Address);
        Assert.Single(services, s => s.ServiceType == typeof(QdrantVectorStore) && Equals(s.ServiceKey, "qdrant"));

        await using var provider = services.AddCrossStoreSync().AddQdrantVectorStore(o => o.BatchSize = -1, "broken").Services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get("broken"));
        Assert.Contains("Address", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_QdrantClient_from_DI_is_used_as_is_and_not_disposed_with_the_store()
    {
        using var dir = new TempDirectory();
        using var client = new QdrantClient(_server.Address, apiKey: "k");
        await using (var engine = await TestEngine.StartAsync(dir.Path, b =>
        {
            b.Services.AddSingleton(client);
            b.AddQdrantVectorStore(sp => sp.GetRequiredService<QdrantClient>(), o => o.BatchSize = 50);
        }))
        {
            var last = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 120).Select(i => Item(i)).ToArray());
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Wait));
            await AssertReplicaMatchesSource(engine, 120);
        }

        // The engine (and its store) are gone; the application's client still works.
        Assert.Equal(120UL, await client.CountAsync("items", exact: true));
    }

    [Fact]
    public async Task Connection_options_beside_a_given_client_fail_at_start()
    {
        var services = new ServiceCollection();
        services.AddCrossStoreSync(o => o.AddCollection("items", 4))
            .AddQdrantVectorStore(_ => new QdrantClient(_server.Address), o => o.Address = _server.Address);
        await using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get("qdrant"));
        Assert.Contains("was given a QdrantClient", error.Message, StringComparison.Ordinal);
    }
}
