using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class SourceFailureTests
{
    [Fact]
    public async Task Source_rejection_throws_naming_the_key_and_no_replica_ever_holds_it()
    {
        await using var engine = await TestEngine.StartAsync();
        var bad = Items.Key("bad");
        engine.SourceFaults.RejectKey(bad, "unique constraint violated");

        var ex = await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteAsync(Items.Entity("bad")));
        Assert.Equal(bad, ex.Key);
        Assert.Equal("documents", ex.Store);
        Assert.Contains("items/bad", ex.Message, StringComparison.Ordinal);
        Assert.Contains("unique constraint violated", ex.Message, StringComparison.Ordinal);
        Assert.IsType<SyncStoreException>(ex.InnerException);

        var batchEx = await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteBatchAsync([Items.Entity("fine"), Items.Entity("bad")]));
        Assert.Contains("items/fine", batchEx.Message, StringComparison.Ordinal);

        // Other keys keep flowing past the aborted entries.
        var after = await engine.WriteAndSyncAsync(Items.Entity("good"));
        Assert.True(after.Lsns.First > 3);
        await engine.AssertReplicasMatchSourceAsync(Items.Key("good"));

        foreach (var store in engine.AllStores)
        {
            Assert.Null(store.GetVersion(bad));

            // The batch was rejected as a whole: its other entity is stored nowhere either.
            Assert.Null(store.GetVersion(Items.Key("fine")));
        }

        var status = await engine.Manager.GetStatusAsync(bad);
        Assert.All(status.Stores, s => Assert.Equal(StoreSyncState.Aborted, s.State));
        Assert.False(status.IsSynced);
    }

    [Fact]
    public async Task Write_during_a_source_outage_stays_pending_and_is_applied_everywhere_when_the_source_returns()
    {
        await using var engine = await TestEngine.StartAsync(o => o.SourceRetryAttempts = 2);
        await engine.WriteAndSyncAsync(Items.Entity("before"));
        engine.SourceFaults.GoDown();

        var ex = await Assert.ThrowsAsync<SourceUnavailableException>(async () => await engine.Manager.WriteAsync(Items.Entity("during")));
        Assert.Equal("documents", ex.Store);
        Assert.Equal(2, ex.Ticket.Lsns.Last);
        Assert.Contains("pending", ex.Message, StringComparison.Ordinal);
        Assert.True(engine.SourceFaults.InjectedFailures >= 3, "The first try and two retries all failed."); // the resolver may try again too

        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(ex.Ticket, TimeSpan.FromMilliseconds(200)));
        var status = await engine.Manager.GetStatusAsync(Items.Key("during"));
        Assert.All(status.Stores, s => Assert.Equal(StoreSyncState.Pending, s.State));
        foreach (var store in engine.AllStores)
        {
            Assert.Null(store.GetVersion(Items.Key("during")));
        }

        engine.SourceFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ex.Ticket, TestEngine.Timeout));

        var stored = await engine.Source.ReadAsync(Items.Key("during"), CancellationToken.None);
        Assert.Equal(ex.Ticket.Version, stored!.Version);
        await engine.AssertReplicasMatchSourceAsync(Items.Key("during"));
        Assert.True((await engine.Manager.GetStatusAsync(Items.Key("during"))).IsSynced);
    }

    [Fact]
    public async Task Pending_write_that_the_source_rejects_on_retry_waits_as_aborted_and_reaches_no_replica()
    {
        await using var engine = await TestEngine.StartAsync(o => o.SourceRetryAttempts = 0);
        engine.SourceFaults.GoDown();
        var ex = await Assert.ThrowsAsync<SourceUnavailableException>(async () => await engine.Manager.WriteAsync(Items.Entity("doomed")));

        engine.SourceFaults.RejectKey(Items.Key("doomed"), "rejected on retry");
        engine.SourceFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Aborted, await engine.Manager.WaitForSyncAsync(ex.Ticket, TestEngine.Timeout));

        foreach (var store in engine.AllStores)
        {
            Assert.Null(store.GetVersion(Items.Key("doomed")));
        }

        var later = await engine.WriteAndSyncAsync(Items.Entity("later"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(later, TestEngine.Timeout));
    }

    [Fact]
    public async Task Replicas_never_read_past_a_pending_source_write()
    {
        await using var engine = await TestEngine.StartAsync(o => o.SourceRetryAttempts = 0);
        engine.SourceFaults.FailNextCalls(1);

        var ex = await Assert.ThrowsAsync<SourceUnavailableException>(async () => await engine.Manager.WriteAsync(Items.Entity("first")));

        // The next write reaches the source at once, yet replicas must wait until the earlier entry is resolved.
        var second = await engine.Manager.WriteAsync(Items.Entity("second"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(second, TestEngine.Timeout));
        foreach (var replica in engine.Replicas)
        {
            Assert.NotNull(replica.GetVersion(Items.Key("first")));
        }

        await engine.AssertReplicasMatchSourceAsync(Items.Key("first"));
        Assert.Equal(ex.Ticket.Version, engine.Source.GetVersion(Items.Key("first")));
    }
}
