using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class CancellationAndTimeoutTests
{
    [Fact]
    public async Task Write_with_a_cancelled_token_throws_operation_cancelled_and_writes_nothing()
    {
        await using var engine = await TestEngine.StartAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.Manager.WriteAsync(Items.Entity("c"), cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.Manager.WriteBatchAsync([Items.Entity("c")], cancelled.Token));

        Assert.Equal(0, engine.Log.Count);
        Assert.Null(engine.Source.GetVersion(Items.Key("c")));
    }

    [Fact]
    public async Task Wait_with_zero_timeout_is_a_poll_and_caller_cancellation_is_not_a_timeout()
    {
        await using var engine = await TestEngine.StartAsync();
        var synced = await engine.WriteAndSyncAsync(Items.Entity("a"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(synced, TimeSpan.Zero));

        engine.VectorFaults.GoDown();
        var pending = await engine.Manager.WriteAsync(Items.Entity("b"));
        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(pending, TimeSpan.Zero));

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.Manager.WaitForSyncAsync(pending, TestEngine.Timeout, cancelled.Token));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await engine.Manager.WaitForSyncAsync(pending, TimeSpan.FromSeconds(-1)));
        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(pending, TestEngine.Timeout));
    }

    [Fact]
    public async Task Hung_replica_times_out_is_retried_and_catches_up_when_it_responds_again()
    {
        await using var engine = await TestEngine.StartAsync(o => o.ApplyTimeout = TimeSpan.FromMilliseconds(100));
        await using var events = new EventRecorder(engine.Manager);
        engine.GraphFaults.Hang();

        var ticket = await engine.Manager.WriteAsync(Items.Entity("h"));
        await events.WaitForAsync(e => e.Kind == SyncEventKind.Retrying && e.Store == "graph" && e.Attempt >= 2, "two retries of the hung store");
        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(ticket, TimeSpan.FromMilliseconds(50)));
        Assert.Null(engine.Graph.GetVersion(Items.Key("h")));

        engine.GraphFaults.StopHanging();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("h"));
        Assert.Empty(await engine.Manager.GetDeadLettersAsync());
    }
}
