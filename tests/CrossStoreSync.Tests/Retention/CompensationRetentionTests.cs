using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Retention;

/// <summary>Log retention keeps prior states only while a rejection can still come, and resolved compensations for DeadLetterRetention.</summary>
public sealed class CompensationRetentionTests
{
    [Fact]
    public async Task Prior_states_go_once_every_store_applied_the_write_and_resolved_records_after_DeadLetterRetention()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o =>
        {
            o.AddCollection(Items.Collection, Items.Dimension, onReplicaRejection: ReplicaRejectionPolicy.Compensate);
            o.Retention.DeadLetterRetention = TimeSpan.FromMinutes(10);
        });
        await using var _ = engine;
        engine.VectorFaults.RejectChanges(Sync.CompensationTests.Revision("r", 1));
        var accepted = await engine.WriteAndSyncAsync(Items.Entity("a"));
        var rejected = await engine.Manager.WriteAsync(Items.Entity("r"));
        Assert.Equal(SyncWaitOutcome.Compensated, await engine.Manager.WaitForSyncAsync(rejected, TestEngine.Timeout));
        var marker = await engine.WriteAndSyncAsync(Items.Entity("m"));
        await engine.SettleAsync(marker.Lsns.Last);
        Assert.Equal(2, (await engine.Log.ListCompensationsAsync(new CompensationQuery(10) { State = CompensationState.Armed }, CancellationToken.None)).Count);

        // Every store is past the accepted writes: no rejection can come any more, so their prior states go.
        await retention.RoundAsync();
        Assert.Empty(await engine.Log.ListCompensationsAsync(new CompensationQuery(10) { State = CompensationState.Armed }, CancellationToken.None));
        var kept = Assert.Single(await engine.Manager.GetCompensationsAsync());
        Assert.Equal(CompensationState.Compensated, kept.State);
        Assert.Equal(SyncWaitOutcome.Compensated, await engine.Manager.WaitForSyncAsync(rejected, TestEngine.Timeout));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(accepted, TestEngine.Timeout));

        // The resolved record is reported until DeadLetterRetention has passed.
        time.Advance(TimeSpan.FromMinutes(11));
        await retention.RoundAsync();
        Assert.Empty(await engine.Manager.GetCompensationsAsync());
    }
}
