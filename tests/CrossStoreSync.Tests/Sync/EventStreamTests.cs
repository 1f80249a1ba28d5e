using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class EventStreamTests
{
    [Fact]
    public async Task Subscribers_see_applied_retrying_dead_lettered_and_aborted_events()
    {
        await using var engine = await TestEngine.StartAsync();
        await using var events = new EventRecorder(engine.Manager);
        var manager = engine.Manager;

        var applied = await engine.WriteAndSyncAsync(Items.Entity("a"));
        foreach (var store in new[] { "vectors", "graph" })
        {
            var e = await events.WaitForAsync(x => x.Kind == SyncEventKind.Applied && x.Store == store && x.LastLsn >= applied.Lsns.Last, $"applied to {store}");
            Assert.InRange(applied.Lsns.Last, e.FirstLsn, e.LastLsn);
            Assert.True(e.Count >= 1);
        }

        engine.VectorFaults.FailNextCalls(2);
        await engine.WriteAndSyncAsync(Items.Entity("b"));
        var firstRetry = await events.WaitForAsync(x => x.Kind == SyncEventKind.Retrying && x.Store == "vectors" && x.Attempt == 1, "first retry");
        await events.WaitForAsync(x => x.Kind == SyncEventKind.Retrying && x.Store == "vectors" && x.Attempt == 2, "second retry");
        Assert.Contains("fault injection", firstRetry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(events.Events, x => x.Kind == SyncEventKind.Retrying && x.Store == "graph");

        engine.VectorFaults.RejectKey(Items.Key("c"), "vector rejected by the test");
        var c = await manager.WriteAsync(Items.Entity("c"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await manager.WaitForSyncAsync(c, TestEngine.Timeout));
        var dead = await events.WaitForAsync(x => x.Kind == SyncEventKind.DeadLettered, "dead letter");
        Assert.Equal("vectors", dead.Store);
        Assert.Equal(Items.Key("c"), dead.Key);
        Assert.Equal(c.Lsns.First, dead.FirstLsn);
        Assert.Contains("vector rejected by the test", dead.Message, StringComparison.Ordinal);

        engine.SourceFaults.RejectKey(Items.Key("d"), "source rejected by the test");
        await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await manager.WriteAsync(Items.Entity("d")));
        var aborted = await events.WaitForAsync(x => x.Kind == SyncEventKind.Aborted, "aborted write");
        Assert.Equal("documents", aborted.Store);
        Assert.Equal(Items.Key("d"), aborted.Key);
        Assert.Contains("source rejected by the test", aborted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slow_subscriber_keeps_the_newest_events_within_its_buffer()
    {
        await using var engine = await TestEngine.StartAsync(o => o.EventBufferCapacity = 2);
        using var stop = new CancellationTokenSource(TestEngine.Timeout);
        var stream = engine.Manager.SubscribeAsync(stop.Token).GetAsyncEnumerator(stop.Token);

        SyncTicket last = default;
        for (var i = 0; i < 5; i++)
        {
            last = await engine.WriteAndSyncAsync(Items.Entity($"s{i}"));
        }

        // Nothing was read while 10 Applied events (2 stores × 5 writes) were published: only the newest 2 are kept.
        var kept = new List<SyncEvent>();
        for (var i = 0; i < 2; i++)
        {
            Assert.True(await stream.MoveNextAsync());
            kept.Add(stream.Current);
        }

        Assert.All(kept, e => Assert.Equal(last.Lsns.Last, e.LastLsn));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stream.MoveNextAsync());
        await stream.DisposeAsync();
    }
}
