using System.Diagnostics.Metrics;
using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.Tests.Sync;

public sealed class CorruptedLogTests
{
    [Fact]
    public async Task Corrupted_record_stops_dispatch_at_it_visibly_and_is_never_skipped()
    {
        CorruptibleChangeLog? log = null;
        await using var engine = await TestEngine.StartAsync(
            decorateLog: inner => log = new CorruptibleChangeLog(inner),
            configureServices: s => s.AddHealthChecks().AddCrossStoreSync());
        await using var events = new EventRecorder(engine.Manager);
        var health = engine.Services.GetRequiredService<HealthCheckService>();
        await engine.WriteAndSyncAsync(Items.Entity("a"));

        log!.CorruptLsn = 2;
        var corrupted = await engine.Manager.WriteAsync(Items.Entity("b"));
        var after = await engine.Manager.WriteAsync(Items.Entity("c"));
        Assert.Equal(2, corrupted.Lsns.Last);

        foreach (var store in new[] { "vectors", "graph" })
        {
            var faulted = await events.WaitForAsync(e => e.Kind == SyncEventKind.Faulted && e.Store == store, $"{store} faulted");
            Assert.Equal(2, faulted.FirstLsn);
            Assert.Contains("checksum", faulted.Message, StringComparison.Ordinal);
        }

        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(after, TimeSpan.FromMilliseconds(200)));
        var stats = await engine.Manager.GetStatisticsAsync();
        Assert.All(stats.Where(s => !s.IsSource), s =>
        {
            Assert.True(s.Faulted);
            Assert.Equal(1, s.Cursor);
        });
        var entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("vectors", entry.Description, StringComparison.Ordinal);

        // The log inspector (css status) finds the corrupted record from the log itself, and the gauge reads 1.
        var overview = await engine.Services.GetRequiredService<IChangeLogInspector>().GetOverviewAsync();
        Assert.All(overview.Stores.Where(s => !s.IsSource), s => Assert.Contains("checksum", s.Fault, StringComparison.Ordinal));
        Assert.Equal([("graph", 1), ("vectors", 1)], FaultedGauge(engine));
        foreach (var replica in engine.Replicas)
        {
            Assert.Null(replica.GetVersion(Items.Key("b")));
            Assert.Null(replica.GetVersion(Items.Key("c")));
        }

        // Once the record reads cleanly again, dispatch resumes from it: nothing was skipped.
        log.CorruptLsn = 0;
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(after, TestEngine.Timeout));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("b"));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("c"));
        Assert.All((await engine.Manager.GetStatisticsAsync()).Where(s => !s.IsSource), s => Assert.False(s.Faulted));
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["crossstoresync"].Status);
        Assert.Equal([("graph", 0), ("vectors", 0)], FaultedGauge(engine));
    }

    private static (string Store, int Value)[] FaultedGauge(TestEngine engine)
    {
        var meter = engine.Services.GetRequiredService<SyncMetrics>().Meter;
        var values = new List<(string Store, int Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "crossstoresync.dispatch.faulted")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) => values.Add(((string)tags[0].Value!, value)));
        listener.Start();
        listener.RecordObservableInstruments();
        return [.. values.Order()];
    }
}
