using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class ReplicaOutageTests
{
    [Fact]
    public async Task Replica_that_was_down_catches_up_without_loss_and_in_version_order()
    {
        RecordingVectorStore? recorder = null;
        await using var engine = await TestEngine.StartAsync(
            o => o.DispatchBatchSize = 64,
            decorateVectors: inner => recorder = new RecordingVectorStore(inner));
        var manager = engine.Manager;
        engine.VectorFaults.GoDown();

        // 250 keys, each written twice: revision 1 in batches 0..4, revision 2 in batches 5..9 (500 writes).
        var tickets = new List<SyncTicket>();
        for (var batch = 0; batch < 10; batch++)
        {
            var revision = (batch / 5) + 1;
            var entities = Enumerable.Range(0, 50).Select(i => Items.Entity($"k{((batch % 5) * 50) + i}", revision)).ToArray();
            tickets.Add(await manager.WriteBatchAsync(entities));
        }

        var last = tickets[^1];
        Assert.Equal(500, last.Lsns.Last);
        Assert.Equal(SyncWaitOutcome.TimedOut, await manager.WaitForSyncAsync(last, TimeSpan.FromMilliseconds(200)));
        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
        var status = await manager.GetStatusAsync(Items.Key("k0"));
        Assert.Equal(StoreSyncState.Pending, status.Stores.Single(s => s.Store == "vectors").State);
        Assert.Equal(0, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));
        Assert.True(engine.VectorFaults.InjectedFailures > 0);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, TestEngine.Timeout));

        Assert.Equal(250, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));
        for (var i = 0; i < 250; i++)
        {
            var key = Items.Key($"k{i}");
            var source = await engine.Source.ReadAsync(key, CancellationToken.None);
            Assert.Contains("\"rev\":2", source!.Entity.DocumentText, StringComparison.Ordinal);
            await engine.AssertReplicasMatchSourceAsync(key);
        }

        AssertVersionsIncreasePerKey(recorder!.Applied);
    }

    [Fact]
    public async Task Replica_applies_each_keys_changes_in_version_order_through_flapping_failures()
    {
        RecordingVectorStore? recorder = null;
        await using var engine = await TestEngine.StartAsync(
            o => o.DispatchBatchSize = 7,
            decorateVectors: inner => recorder = new RecordingVectorStore(inner));
        for (var call = 2; call < 200; call += 3)
        {
            engine.VectorFaults.FailCall(call);
        }

        SyncTicket last = default;
        for (var round = 1; round <= 30; round++)
        {
            for (var k = 0; k < 10; k++)
            {
                last = await engine.Manager.WriteAsync(Items.Entity($"k{k}", round));
            }
        }

        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TestEngine.Timeout));
        Assert.True(engine.VectorFaults.InjectedFailures > 5);
        for (var k = 0; k < 10; k++)
        {
            await engine.AssertReplicasMatchSourceAsync(Items.Key($"k{k}"));
        }

        AssertVersionsIncreasePerKey(recorder!.Applied);
    }

    private static void AssertVersionsIncreasePerKey(IReadOnlyList<(EntityKey Key, HlcTimestamp Version)> applied)
    {
        Assert.NotEmpty(applied);
        var newest = new Dictionary<EntityKey, HlcTimestamp>();
        foreach (var (key, version) in applied)
        {
            if (newest.TryGetValue(key, out var previous))
            {
                Assert.True(version > previous, $"{key} was applied at {version} after {previous}.");
            }

            newest[key] = version;
        }
    }
}
