using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Tests.Retention;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Telemetry;

public sealed class MetricsTests
{
    private static readonly Dictionary<string, string> ExpectedInstruments = new(StringComparer.Ordinal)
    {
        ["crossstoresync.log.appended"] = "{change}",
        ["crossstoresync.write.duration"] = "s",
        ["crossstoresync.write.rejected"] = "{change}",
        ["crossstoresync.store.applied"] = "{change}",
        ["crossstoresync.store.apply.duration"] = "s",
        ["crossstoresync.store.retries"] = "{retry}",
        ["crossstoresync.store.dead_letters"] = "{change}",
        ["crossstoresync.log.pending_resolved"] = "{change}",
        ["crossstoresync.dispatch.lag"] = "{change}",
        ["crossstoresync.dispatch.lag.time"] = "s",
        ["crossstoresync.dispatch.faulted"] = "{store}",
        ["crossstoresync.consistency.inconsistencies"] = "{entity}",
        ["crossstoresync.consistency.repaired"] = "{change}",
        ["crossstoresync.consistency.entries_read"] = "{entry}",
        ["crossstoresync.consistency.check.duration"] = "s",
        ["crossstoresync.migration.entities"] = "{entity}",
        ["crossstoresync.migration.batch.size"] = "{entity}",
        ["crossstoresync.migration.batch.duration"] = "s",
        ["crossstoresync.replication.states"] = "{state}",
        ["crossstoresync.replication.conflicts"] = "{conflict}",
        ["crossstoresync.log.truncated"] = "{entry}",
        ["crossstoresync.log.retained"] = "{entry}",
        ["crossstoresync.log.retained.size"] = "By",
        ["crossstoresync.retention.behind"] = "{entry}",
        ["crossstoresync.store.tombstones_purged"] = "{tombstone}",
        ["crossstoresync.dead_letters.stored"] = "{change}",
        ["crossstoresync.dead_letters.expired"] = "{change}",
        ["crossstoresync.store.needs_rebuild"] = "{store}",
        ["crossstoresync.compensations"] = "{change}",
    };

    [Fact]
    public async Task Retention_instruments_report_truncation_retained_entries_tombstones_dead_letters_and_rebuilds()
    {
        var (engine, time, retention) = await Retention.RetentionSupport.StartAsync(o =>
        {
            o.DispatchBatchSize = 10;
            o.Retention.MaxRetainedEntries = 10;
            o.Retention.TombstoneRetention = TimeSpan.FromMinutes(1);
            o.Retention.DeadLetterRetention = TimeSpan.FromMinutes(1);
        });
        await using var _ = engine;
        using var recorder = new MeasurementRecorder(engine.Services.GetRequiredService<SyncMetrics>().Meter);
        engine.VectorFaults.RejectKey(Items.Key("bad"));
        var bad = await engine.Manager.WriteAsync(Items.Entity("bad"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(bad, TestEngine.Timeout));
        await engine.WriteAndSyncAsync(Items.Entity("gone"));
        var delete = await engine.Manager.DeleteAsync(Items.Key("gone"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(delete, TestEngine.Timeout));
        await Retention.RetentionSupport.SettleAsync(engine, delete.Lsns.Last);

        // Before: three entries, one dead letter, nothing removed.
        await retention.RoundAsync();
        recorder.RecordObservables();
        Assert.Equal(3, recorder.Latest("crossstoresync.log.retained"));
        Assert.True(recorder.Latest("crossstoresync.log.retained.size") > 0);
        Assert.Equal(1, recorder.Latest("crossstoresync.dead_letters.stored", "vectors"));
        Assert.Equal(0, recorder.Latest("crossstoresync.store.needs_rebuild", "vectors"));

        // After: entries truncated, the tombstone purged from all three stores, the dead letter expired.
        time.Advance(TimeSpan.FromMinutes(2));
        await retention.RoundAsync();
        recorder.RecordObservables();
        Assert.Equal(3, recorder.Sum("crossstoresync.log.truncated"));
        Assert.Equal(0, recorder.Latest("crossstoresync.log.retained"));
        Assert.Equal(1, recorder.Sum("crossstoresync.store.tombstones_purged", "documents"));
        Assert.Equal(1, recorder.Sum("crossstoresync.store.tombstones_purged", "vectors"));
        Assert.Equal(1, recorder.Sum("crossstoresync.store.tombstones_purged", "graph"));
        Assert.Equal(1, recorder.Sum("crossstoresync.dead_letters.expired", "vectors"));
        Assert.Equal(0, recorder.Latest("crossstoresync.dead_letters.stored", "vectors"));
        Assert.Equal(0, recorder.Latest("crossstoresync.retention.behind", holder: "vectors"));

        // A replica down past the cap: held back, then cut off.
        engine.VectorFaults.GoDown();
        SyncTicket last = default;
        for (var i = 0; i < 25; i++)
        {
            last = await engine.Manager.WriteAsync(Items.Entity("w" + i));
        }

        await Retention.RetentionSupport.SettleAsync(engine, last.Lsns.Last, "graph");
        await retention.RoundAsync();
        recorder.RecordObservables();
        Assert.Equal(25, recorder.Latest("crossstoresync.retention.behind", holder: "vectors"));
        time.Advance(TimeSpan.FromMinutes(2));
        await retention.RoundAsync();
        recorder.RecordObservables();
        Assert.Equal(1, recorder.Latest("crossstoresync.store.needs_rebuild", "vectors"));
        Assert.Equal(0, recorder.Latest("crossstoresync.store.needs_rebuild", "graph"));
        engine.VectorFaults.ComeBack();
    }

    [Fact]
    public async Task Migration_instruments_report_entities_batches_and_failures()
    {
        await using var engine = await TestEngine.StartAsync(
            o => o.ReplicasAwaitingBackfill.Add("vectors"),
            configureServices: s => s.AddCrossStoreSync().AddTransform("reject-x", (e, _) => e.Key.Id == "x3" ? throw new InvalidOperationException("no") : ValueTask.FromResult(e)));
        using var recorder = new MeasurementRecorder(engine.Services.GetRequiredService<SyncMetrics>().Meter);
        await engine.Source.ApplyAsync(Enumerable.Range(0, 300).Select(i => CrossStoreSync.Model.EntityChange.Upsert(Items.Entity("x" + i), new CrossStoreSync.Model.HlcTimestamp(1_000 + i))).ToArray(), CancellationToken.None);

        var report = await engine.Services.GetRequiredService<CrossStoreSync.Migration.IMigrationManager>().RunAsync(
            new CrossStoreSync.Migration.MigrationRequest { Id = "metrics", Target = "vectors", TransformName = "reject-x", InitialBatchSize = 50, MinBatchSize = 50, MaxBatchSize = 50, Verify = false });

        Assert.Equal(299, recorder.Sum("crossstoresync.migration.entities", "vectors", ("outcome", "written")));
        Assert.Equal(1, recorder.Sum("crossstoresync.migration.entities", "vectors", ("outcome", "failed")));
        Assert.Equal(1, recorder.Sum("crossstoresync.store.dead_letters", "vectors"));
        Assert.True(recorder.Count("crossstoresync.migration.batch.size") >= 6);
        Assert.Equal(recorder.Count("crossstoresync.migration.batch.size"), recorder.Count("crossstoresync.migration.batch.duration"));
        Assert.Equal(299, report.Written);
    }

    [Fact]
    public async Task Consistency_instruments_report_checks_findings_and_repairs()
    {
        await using var engine = await TestEngine.StartAsync();
        using var recorder = new MeasurementRecorder(engine.Services.GetRequiredService<SyncMetrics>().Meter);
        await engine.Manager.WriteAsync(Items.Entity("a"));
        await engine.WriteAndSyncAsync(Items.Entity("b"));
        engine.Vectors.EraseBehindTheLibrary(Items.Key("a"));
        engine.Graph.InsertBehindTheLibrary(Items.Entity("ghost"), new CrossStoreSync.Model.HlcTimestamp(5));

        var checker = engine.Services.GetRequiredService<CrossStoreSync.Consistency.IConsistencyChecker>();
        var report = await checker.CheckAsync(Items.Collection);
        Assert.Equal(1, recorder.Count("crossstoresync.consistency.check.duration"));
        Assert.Equal(1, recorder.Sum("crossstoresync.consistency.inconsistencies", "vectors"));
        Assert.Equal(1, recorder.Sum("crossstoresync.consistency.inconsistencies", "graph"));
        Assert.True(recorder.Sum("crossstoresync.consistency.entries_read", "vectors") >= 3);

        var repair = await checker.RepairAsync(report);
        Assert.Equal(2, recorder.Sum("crossstoresync.consistency.repaired"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(repair.Ticket!.Value, TestEngine.Timeout));
        Assert.True((await checker.CheckAsync(Items.Collection)).IsConsistent);
        Assert.Equal(2, recorder.Count("crossstoresync.consistency.check.duration"));
    }

    [Fact]
    public async Task Compensation_counter_reports_each_outcome_by_the_store_that_rejected_the_write()
    {
        await using var engine = await TestEngine.StartAsync(o => o.AddCollection(Items.Collection, Items.Dimension, onReplicaRejection: ReplicaRejectionPolicy.Compensate));
        using var recorder = new MeasurementRecorder(engine.Services.GetRequiredService<SyncMetrics>().Meter);
        engine.VectorFaults.RejectChanges(Sync.CompensationTests.Revision("c", 1));
        engine.GraphFaults.RejectChanges(Sync.CompensationTests.Revision("s", 2));
        await engine.WriteAndSyncAsync(Items.Entity("s", revision: 1));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        engine.Engine.BeforeCompensate = async (record, ct) =>
        {
            if (record.Key == Items.Key("s"))
            {
                await release.Task.WaitAsync(ct);
            }
        };

        var compensated = await engine.Manager.WriteAsync(Items.Entity("c"));
        Assert.Equal(SyncWaitOutcome.Compensated, await engine.Manager.WaitForSyncAsync(compensated, TestEngine.Timeout));
        var superseded = await engine.Manager.WriteAsync(Items.Entity("s", revision: 2));
        await engine.WaitForReplicaAsync("graph", superseded.Lsns.Last);
        await engine.WriteAndSyncAsync(Items.Entity("s", revision: 3));
        release.SetResult();
        Assert.Equal(SyncWaitOutcome.Compensated, await engine.Manager.WaitForSyncAsync(superseded, TestEngine.Timeout));

        Assert.Equal(1, recorder.Sum("crossstoresync.compensations", "vectors", ("outcome", "compensated")));
        Assert.Equal(1, recorder.Sum("crossstoresync.compensations", "graph", ("outcome", "superseded")));
        Assert.Equal(0, recorder.Sum("crossstoresync.store.dead_letters", "vectors"));
    }

    [Fact]
    public async Task Every_instrument_is_published_and_reports_what_happened()
    {
        await using var engine = await TestEngine.StartAsync();
        var meter = engine.Services.GetRequiredService<SyncMetrics>().Meter;
        Assert.Equal(SyncTelemetry.Name, meter.Name);
        using var recorder = new MeasurementRecorder(meter);
        var manager = engine.Manager;

        Assert.Equal(
            ExpectedInstruments.OrderBy(i => i.Key, StringComparer.Ordinal).Select(i => $"{i.Key} [{i.Value}]"),
            recorder.Published.Values.OrderBy(i => i.Name, StringComparer.Ordinal).Select(i => $"{i.Name} [{i.Unit}]"));
        Assert.All(recorder.Published.Values, i => Assert.False(string.IsNullOrWhiteSpace(i.Description), $"{i.Name} has no description."));

        // Plain writes: appended, write duration, applied and apply duration per store.
        await engine.WriteAndSyncAsync(Items.Entity("a"));

        // Transient replica failures: retries.
        engine.VectorFaults.FailNextCalls(2);
        await engine.WriteAndSyncAsync(Items.Entity("b"));
        Assert.Equal(2, recorder.Sum("crossstoresync.store.retries", "vectors"));

        // A replica rejecting a key: dead letter.
        engine.VectorFaults.RejectKey(Items.Key("c"));
        var c = await manager.WriteAsync(Items.Entity("c"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await manager.WaitForSyncAsync(c, TestEngine.Timeout));
        Assert.Equal(1, recorder.Sum("crossstoresync.store.dead_letters", "vectors"));
        Assert.Equal(0, recorder.Sum("crossstoresync.store.dead_letters", "graph"));

        // The source rejecting a write: rejected.
        engine.SourceFaults.RejectKey(Items.Key("d"));
        await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await manager.WriteAsync(Items.Entity("d")));
        Assert.Equal(1, recorder.Sum("crossstoresync.write.rejected"));

        // A source outage: the pending write is resolved later.
        engine.SourceFaults.GoDown();
        var outage = await Assert.ThrowsAsync<SourceUnavailableException>(async () => await manager.WriteAsync(Items.Entity("e")));
        engine.SourceFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(outage.Ticket, TestEngine.Timeout));
        await recorder.WaitForAsync("crossstoresync.log.pending_resolved");
        Assert.InRange(recorder.Sum("crossstoresync.log.pending_resolved"), 1, 2); // e, and d if the resolver saw it before its writer did
        Assert.True(recorder.Sum("crossstoresync.store.retries", "documents") >= 3);

        // A replica that is down: lag gauges.
        engine.VectorFaults.GoDown();
        SyncTicket last = default;
        for (var i = 0; i < 3; i++)
        {
            last = await manager.WriteAsync(Items.Entity($"lag{i}"));
        }

        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
        recorder.RecordObservables();
        Assert.Equal(3, recorder.Latest("crossstoresync.dispatch.lag", "vectors"));
        Assert.Equal(0, recorder.Latest("crossstoresync.dispatch.lag", "graph"));
        Assert.True(recorder.Latest("crossstoresync.dispatch.lag.time", "vectors") >= 0);
        Assert.Equal(0, recorder.Latest("crossstoresync.dispatch.lag.time", "graph"));
        Assert.Equal(0, recorder.Latest("crossstoresync.dispatch.faulted", "vectors"));

        // Counters and histograms, read back: a, b, c and the three lag writes were acknowledged.
        Assert.InRange(recorder.Sum("crossstoresync.log.appended"), 6, engine.Log.Count);
        Assert.True(recorder.Count("crossstoresync.write.duration") >= 6);
        Assert.All(recorder.Values("crossstoresync.write.duration"), v => Assert.True(v >= 0));
        Assert.Equal(3, recorder.Sum("crossstoresync.store.applied", "vectors")); // a, b, e (c was dead-lettered)
        Assert.Equal(7, recorder.Sum("crossstoresync.store.applied", "graph")); // a, b, c, e, lag0..2
        Assert.True(recorder.Count("crossstoresync.store.apply.duration", "vectors") >= 3);
        Assert.True(recorder.Count("crossstoresync.store.apply.duration", "graph") >= 3);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, TestEngine.Timeout));
        recorder.RecordObservables();
        Assert.Equal(0, recorder.Latest("crossstoresync.dispatch.lag", "vectors"));
    }

    /// <summary>Reads back every measurement of one <see cref="Meter"/> instance (so parallel tests do not mix).</summary>
    private sealed class MeasurementRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Name, double Value, string? Store, string? Outcome, string? Holder)> _measurements = new();
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _seen = new(StringComparer.Ordinal);

        public MeasurementRecorder(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    Published[instrument.Name] = instrument;
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.Start();
        }

        public ConcurrentDictionary<string, Instrument> Published { get; } = new(StringComparer.Ordinal);

        public void RecordObservables() => _listener.RecordObservableInstruments();

        public IEnumerable<double> Values(string name, string? store = null) =>
            _measurements.Where(m => m.Name == name && (store is null || m.Store == store)).Select(m => m.Value);

        public double Sum(string name, string? store = null) => Values(name, store).Sum();

        public double Sum(string name, string store, (string Key, string Value) outcome) =>
            _measurements.Where(m => m.Name == name && m.Store == store && outcome.Key == "outcome" && m.Outcome == outcome.Value).Sum(m => m.Value);

        public int Count(string name, string? store = null) => Values(name, store).Count();

        public double Latest(string name, string? store = null, string? holder = null)
        {
            var values = _measurements.Where(m => m.Name == name && (store is null || m.Store == store) && (holder is null || m.Holder == holder)).Select(m => m.Value).ToArray();
            Assert.True(values.Length > 0, $"No measurement of {name} for store {store} / holder {holder}.");
            return values[^1];
        }

        public async Task WaitForAsync(string name)
        {
            var seen = _seen.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (Count(name) > 0)
            {
                return;
            }

            await seen.Task.WaitAsync(TestEngine.Timeout);
        }

        private void Add<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
            where T : struct
        {
            string? store = null;
            string? outcome = null;
            string? holder = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "store")
                {
                    store = tag.Value as string;
                }
                else if (tag.Key == "holder")
                {
                    holder = tag.Value as string;
                }
                else if (tag.Key == "outcome")
                {
                    outcome = tag.Value as string;
                }
            }

            _measurements.Enqueue((instrument.Name, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture), store, outcome, holder));
            _seen.GetOrAdd(instrument.Name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        public void Dispose() => _listener.Dispose();
    }
}
