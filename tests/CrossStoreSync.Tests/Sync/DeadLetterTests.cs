using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class DeadLetterTests
{
    [Fact]
    public async Task Replica_rejection_dead_letters_only_that_key_and_replay_brings_the_sources_current_version()
    {
        await using var engine = await TestEngine.StartAsync();
        var manager = engine.Manager;
        var bad = Items.Key("b2");
        engine.VectorFaults.RejectKey(bad, "payload too large for the vector index");

        var batch = await manager.WriteBatchAsync(Enumerable.Range(0, 5).Select(i => Items.Entity($"b{i}")).ToArray());
        Assert.Equal(SyncWaitOutcome.DeadLettered, await manager.WaitForSyncAsync(batch, TestEngine.Timeout));
        var other = await manager.WriteAsync(Items.Entity("other"));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(other, TestEngine.Timeout));

        // Only the rejected change is set aside; the rest of its batch is applied.
        Assert.Null(engine.Vectors.GetVersion(bad));
        foreach (var id in new[] { "b0", "b1", "b3", "b4", "other" })
        {
            await engine.AssertReplicasMatchSourceAsync(Items.Key(id));
        }

        // The graph store did not reject it.
        Assert.Equal(engine.Source.GetVersion(bad), engine.Graph.GetVersion(bad));

        var letter = Assert.Single(await manager.GetDeadLettersAsync());
        Assert.Equal("vectors", letter.Store);
        Assert.Equal(bad, letter.Key);
        Assert.Equal(ChangeKind.Upsert, letter.Kind);
        Assert.Equal(engine.Source.GetVersion(bad), letter.Version);
        Assert.InRange(letter.Lsn, batch.Lsns.First, batch.Lsns.Last);
        Assert.Contains("payload too large for the vector index", letter.Reason, StringComparison.Ordinal);
        Assert.Empty(await manager.GetDeadLettersAsync("graph"));

        // A newer write while the replica still rejects the key is dead-lettered too; the source moves on.
        var newer = await manager.WriteAsync(Items.Entity("b2", revision: 2));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await manager.WaitForSyncAsync(newer, TestEngine.Timeout));
        Assert.Equal(2, (await manager.GetDeadLettersAsync("vectors")).Count);

        engine.VectorFaults.AcceptKey(bad);
        Assert.Equal(2, await manager.ReplayDeadLettersAsync("vectors"));
        Assert.Empty(await manager.GetDeadLettersAsync());

        // Replays go through the log; a later write's ticket proves the dispatcher has passed them.
        var marker = await manager.WriteAsync(Items.Entity("marker"));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(marker, TestEngine.Timeout));

        Assert.Equal(newer.Version, engine.Vectors.GetVersion(bad));
        await engine.AssertReplicasMatchSourceAsync(bad);
        var status = await manager.GetStatusAsync(bad);
        Assert.True(status.IsSynced, string.Join(", ", status.Stores));
        Assert.Empty(await manager.GetDeadLettersAsync());
    }

    [Fact]
    public async Task Replaying_with_nothing_dead_lettered_changes_nothing()
    {
        await using var engine = await TestEngine.StartAsync();
        await engine.WriteAndSyncAsync(Items.Entity("a"));

        Assert.Equal(0, await engine.Manager.ReplayDeadLettersAsync());
        Assert.Equal(1, engine.Log.Count);
    }

    [Fact]
    public async Task Dead_lettered_delete_is_replayed_as_a_delete()
    {
        await using var engine = await TestEngine.StartAsync();
        var key = Items.Key("d");
        await engine.WriteAndSyncAsync(Items.Entity("d"));
        engine.GraphFaults.RejectKey(key);

        var deleted = await engine.Manager.DeleteAsync(key);
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(deleted, TestEngine.Timeout));
        Assert.Equal(ChangeKind.Delete, Assert.Single(await engine.Manager.GetDeadLettersAsync("graph")).Kind);
        Assert.Single(await engine.Graph.ReadDigestsAsync(Items.Collection, ["d"], CancellationToken.None));

        engine.GraphFaults.AcceptKey(key);
        Assert.Equal(1, await engine.Manager.ReplayDeadLettersAsync());
        await engine.WriteAndSyncAsync(Items.Entity("marker"));

        Assert.Empty(await engine.Graph.ReadDigestsAsync(Items.Collection, ["d"], CancellationToken.None));
        Assert.Empty(await engine.Vectors.ReadDigestsAsync(Items.Collection, ["d"], CancellationToken.None));
        Assert.Null(await engine.Source.ReadAsync(key, CancellationToken.None));
    }
}
