using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Sync;

public sealed class InspectionTests
{
    [Fact]
    public async Task An_engine_that_does_not_dispatch_applies_nothing_and_reports_lag_from_the_log()
    {
        await using var engine = await TestEngine.StartAsync(o => o.RunDispatchers = false);
        var ticket = await engine.Manager.WriteAsync(Items.Entity("a"));
        await engine.Manager.WriteAsync(Items.Entity("b"));

        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(ticket, TimeSpan.FromMilliseconds(100)));
        Assert.All(engine.Replicas, r => Assert.Null(r.GetVersion(Items.Key("a"))));

        var overview = await engine.Services.GetRequiredService<IChangeLogInspector>().GetOverviewAsync();
        Assert.Equal(2, overview.Head);
        Assert.Equal(1, overview.OldestLsn);
        Assert.Equal(2, overview.RetainedEntries);
        Assert.Equal(0, overview.PendingEntries);
        Assert.True(overview.Stores[0].IsSource);
        Assert.All(overview.Stores.Skip(1), s =>
        {
            Assert.Equal(0, s.Cursor);
            Assert.Equal(2, s.LagChanges);
            Assert.NotNull(s.OldestUnappliedAt);
            Assert.False(s.Faulted);
        });
    }
}
