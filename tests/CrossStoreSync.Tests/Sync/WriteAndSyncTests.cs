using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class WriteAndSyncTests
{
    [Fact]
    public async Task Written_entity_reaches_every_store_with_the_same_version_and_hash()
    {
        await using var engine = await TestEngine.StartAsync();
        var key = Items.Key("a");

        var ticket = await engine.Manager.WriteAsync(Items.Entity("a"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));

        Assert.Equal(1, ticket.Lsns.Count);
        foreach (var store in engine.AllStores)
        {
            Assert.Equal(ticket.Version, store.GetVersion(key));
        }

        await engine.AssertReplicasMatchSourceAsync(key);
        var stored = await engine.Source.ReadAsync(key, CancellationToken.None);
        Assert.Equal("""{"id":"a","rev":1}""", stored!.Entity.DocumentText);
    }

    [Fact]
    public async Task Newer_write_replaces_the_older_one_in_every_store()
    {
        await using var engine = await TestEngine.StartAsync();
        var key = Items.Key("a");

        var first = await engine.WriteAndSyncAsync(Items.Entity("a", revision: 1));
        var second = await engine.WriteAndSyncAsync(Items.Entity("a", revision: 2));

        Assert.True(second.Version > first.Version);
        foreach (var store in engine.AllStores)
        {
            Assert.Equal(second.Version, store.GetVersion(key));
        }

        await engine.AssertReplicasMatchSourceAsync(key);
        var matches = await engine.Vectors.SearchAsync(Items.Collection, new float[] { 2, 1, 2, 3 }, 1, CancellationToken.None);
        Assert.Equal(key, Assert.Single(matches).Key);
        Assert.Equal(1f, matches[0].Score, 5);
    }

    [Fact]
    public async Task Batch_write_is_one_append_and_reaches_every_store()
    {
        await using var engine = await TestEngine.StartAsync();
        var entities = Enumerable.Range(0, 50).Select(i => Items.Entity($"b{i}")).ToArray();

        var ticket = await engine.Manager.WriteBatchAsync(entities);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));

        Assert.Equal(50, ticket.Lsns.Count);
        Assert.Equal(50, engine.Log.Count);
        foreach (var entity in entities)
        {
            await engine.AssertReplicasMatchSourceAsync(entity.Key);
        }

        foreach (var store in engine.AllStores)
        {
            Assert.Equal(50, await store.CountAsync(Items.Collection, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Delete_removes_the_entity_from_every_store()
    {
        await using var engine = await TestEngine.StartAsync();
        var key = Items.Key("gone");
        await engine.WriteAndSyncAsync(Items.Entity("gone"));
        await engine.WriteAndSyncAsync(Items.Entity("kept"));

        var deleted = await engine.Manager.DeleteAsync(key);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(deleted, TestEngine.Timeout));

        Assert.Null(await engine.Source.ReadAsync(key, CancellationToken.None));
        foreach (var store in engine.AllStores)
        {
            Assert.Empty(await store.ReadDigestsAsync(Items.Collection, [key.Id], CancellationToken.None));
            Assert.Equal(1, await store.CountAsync(Items.Collection, CancellationToken.None));

            // A versioned tombstone stays, so a replayed older upsert cannot resurrect the entity.
            Assert.Equal(deleted.Version, store.GetVersion(key));
        }

        Assert.Empty(await engine.Graph.GetNeighborsAsync(key, null, CrossStoreSync.Stores.EdgeDirection.Outgoing, CancellationToken.None));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("kept"));
    }

    [Fact]
    public async Task Status_is_synced_pending_and_dead_lettered_with_the_reason()
    {
        await using var engine = await TestEngine.StartAsync();
        var manager = engine.Manager;

        var never = await manager.GetStatusAsync(Items.Key("never-written"));
        Assert.Null(never.LastLsn);
        Assert.True(never.IsSynced);

        var synced = await engine.WriteAndSyncAsync(Items.Entity("s"));
        var status = await manager.GetStatusAsync(Items.Key("s"));
        Assert.True(status.IsSynced);
        Assert.Equal(synced.Lsns.Last, status.LastLsn);
        Assert.Equal(synced.Version, status.Version);
        Assert.Equal(["documents", "vectors", "graph"], status.Stores.Select(s => s.Store));

        engine.VectorFaults.GoDown();
        var pending = await manager.WriteAsync(Items.Entity("s", revision: 2));
        await engine.WaitForReplicaAsync("graph", pending.Lsns.Last);
        status = await manager.GetStatusAsync(Items.Key("s"));
        Assert.False(status.IsSynced);
        Assert.Equal(StoreSyncState.Synced, Store(status, "documents").State);
        Assert.Equal(StoreSyncState.Pending, Store(status, "vectors").State);
        Assert.Equal(StoreSyncState.Synced, Store(status, "graph").State);
        Assert.True(Store(status, "vectors").Cursor < pending.Lsns.Last);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(pending, TestEngine.Timeout));
        Assert.True((await manager.GetStatusAsync(Items.Key("s"))).IsSynced);

        engine.VectorFaults.RejectKey(Items.Key("s"), "vector payload refused by test");
        var rejected = await manager.WriteAsync(Items.Entity("s", revision: 3));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await manager.WaitForSyncAsync(rejected, TestEngine.Timeout));
        status = await manager.GetStatusAsync(Items.Key("s"));
        Assert.False(status.IsSynced);
        Assert.Equal(StoreSyncState.DeadLettered, Store(status, "vectors").State);
        Assert.Contains("vector payload refused by test", Store(status, "vectors").Reason, StringComparison.Ordinal);
        Assert.Equal(StoreSyncState.Synced, Store(status, "graph").State);
        Assert.Null(Store(status, "graph").Reason);
    }

    [Fact]
    public async Task Statistics_report_each_replicas_lag()
    {
        await using var engine = await TestEngine.StartAsync();
        await engine.WriteAndSyncAsync(Items.Entity("x"));

        var stats = await engine.Manager.GetStatisticsAsync();
        Assert.All(stats, s => Assert.Equal(0, s.LagChanges));
        Assert.True(Assert.Single(stats, s => s.IsSource).Store == "documents");

        engine.VectorFaults.GoDown();
        SyncTicket last = default;
        for (var i = 0; i < 5; i++)
        {
            last = await engine.Manager.WriteAsync(Items.Entity($"y{i}"));
        }

        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
        stats = await engine.Manager.GetStatisticsAsync();
        Assert.Equal(5, Assert.Single(stats, s => s.Store == "vectors").LagChanges);
        Assert.Equal(0, Assert.Single(stats, s => s.Store == "graph").LagChanges);
        engine.VectorFaults.ComeBack();
    }

    private static StoreEntityStatus Store(EntitySyncStatus status, string name) => Assert.Single(status.Stores, s => s.Store == name);
}
