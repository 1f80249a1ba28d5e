using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CrossStoreSync.Telemetry;

/// <summary>The names of the library's telemetry sources.</summary>
public static class SyncTelemetry
{
    /// <summary>The name of the <see cref="Meter"/> and <see cref="ActivitySource"/>: <c>CrossStoreSync</c>.</summary>
    public const string Name = "CrossStoreSync";

    internal static readonly ActivitySource ActivitySource = new(Name, typeof(SyncTelemetry).Assembly.GetName().Version?.ToString());
}

/// <summary>Per-store lag, as reported to the lag gauges and health check.</summary>
internal readonly record struct StoreLag(string Store, long Changes, double Seconds, bool Faulted);

/// <summary>The library's instruments. One instance per service provider, created from <see cref="IMeterFactory"/>.</summary>
internal sealed class SyncMetrics
{
    private Func<IReadOnlyList<StoreLag>>? _lagSource;

    public SyncMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(SyncTelemetry.Name);
        Appended = Meter.CreateCounter<long>("crossstoresync.log.appended", "{change}", "Changes appended to the change log.");
        WriteDuration = Meter.CreateHistogram<double>("crossstoresync.write.duration", "s", "Time from a write call to its acknowledgement (log durable, source applied).");
        WritesRejected = Meter.CreateCounter<long>("crossstoresync.write.rejected", "{change}", "Changes the source of truth rejected permanently (aborted).");
        Applied = Meter.CreateCounter<long>("crossstoresync.store.applied", "{change}", "Changes applied to a store by its dispatcher.");
        ApplyDuration = Meter.CreateHistogram<double>("crossstoresync.store.apply.duration", "s", "Duration of one batch apply to a store, retries included.");
        Retries = Meter.CreateCounter<long>("crossstoresync.store.retries", "{retry}", "Retries after transient store failures.");
        DeadLetters = Meter.CreateCounter<long>("crossstoresync.store.dead_letters", "{change}", "Changes a store rejected permanently and that were dead-lettered.");
        Inconsistencies = Meter.CreateCounter<long>("crossstoresync.consistency.inconsistencies", "{entity}", "Inconsistencies found by consistency checks, by store and kind.");
        Repaired = Meter.CreateCounter<long>("crossstoresync.consistency.repaired", "{change}", "Repair changes written by the consistency checker.");
        EntriesRead = Meter.CreateCounter<long>("crossstoresync.consistency.entries_read", "{entry}", "Digests and entities read by consistency checks.");
        CheckDuration = Meter.CreateHistogram<double>("crossstoresync.consistency.check.duration", "s", "Duration of a consistency check.");
        PendingResolved = Meter.CreateCounter<long>("crossstoresync.log.pending_resolved", "{change}", "Pending log entries resolved after a crash or a source outage.");
        MigrationEntities = Meter.CreateCounter<long>("crossstoresync.migration.entities", "{entity}", "Entities a migration wrote or dead-lettered, by target and outcome.");
        MigrationBatchSize = Meter.CreateHistogram<int>("crossstoresync.migration.batch.size", "{entity}", "Batch sizes the migration's size controller chose.");
        MigrationBatchDuration = Meter.CreateHistogram<double>("crossstoresync.migration.batch.duration", "s", "Duration of one migration batch write, retries excluded.");
        Replicated = Meter.CreateCounter<long>("crossstoresync.replication.states", "{state}", "States received from other nodes, by peer and outcome (written, merged, ignored).");
        Conflicts = Meter.CreateCounter<long>("crossstoresync.replication.conflicts", "{conflict}", "Concurrent states detected between nodes, by collection and resolution.");
        Meter.CreateObservableGauge("crossstoresync.dispatch.lag", ObserveLagChanges, "{change}", "Log entries a store has not applied yet.");
        Meter.CreateObservableGauge("crossstoresync.dispatch.lag.time", ObserveLagSeconds, "s", "Age of the oldest change a store has not applied yet.");
        Meter.CreateObservableGauge("crossstoresync.dispatch.faulted", ObserveFaulted, "{store}", "1 while a store's dispatcher is stopped by a corrupted change-log record, else 0.");
    }

    public Meter Meter { get; }

    public Counter<long> Appended { get; }

    public Histogram<double> WriteDuration { get; }

    public Counter<long> WritesRejected { get; }

    public Counter<long> Applied { get; }

    public Histogram<double> ApplyDuration { get; }

    public Counter<long> Retries { get; }

    public Counter<long> DeadLetters { get; }

    public Counter<long> PendingResolved { get; }

    public Counter<long> Inconsistencies { get; }

    public Counter<long> Repaired { get; }

    public Counter<long> EntriesRead { get; }

    public Histogram<double> CheckDuration { get; }

    /// <summary>Entities a migration handled; tags <c>store</c> and <c>outcome</c> (written, failed).</summary>
    public Counter<long> MigrationEntities { get; }

    /// <summary>Batch sizes chosen by migrations.</summary>
    public Histogram<int> MigrationBatchSize { get; }

    /// <summary>Migration batch write durations.</summary>
    public Histogram<double> MigrationBatchDuration { get; }

    /// <summary>States received from other nodes; tags <c>peer</c> and <c>outcome</c>.</summary>
    public Counter<long> Replicated { get; }

    /// <summary>Conflicts detected; tags <c>collection</c> and <c>resolution</c>.</summary>
    public Counter<long> Conflicts { get; }

    public void RecordReplicated(string peer, int written, int merged, int ignored)
    {
        var tag = new KeyValuePair<string, object?>("peer", peer);
        if (written > 0)
        {
            Replicated.Add(written, tag, new KeyValuePair<string, object?>("outcome", "written"));
        }

        if (merged > 0)
        {
            Replicated.Add(merged, tag, new KeyValuePair<string, object?>("outcome", "merged"));
        }

        if (ignored > 0)
        {
            Replicated.Add(ignored, tag, new KeyValuePair<string, object?>("outcome", "ignored"));
        }
    }

    public void RecordConflict(string collection, Log.ConflictResolutionKind resolution) =>
        Conflicts.Add(1, new KeyValuePair<string, object?>("collection", collection), new KeyValuePair<string, object?>("resolution", resolution switch
        {
            Log.ConflictResolutionKind.KeptLocal => "kept_local",
            Log.ConflictResolutionKind.TookRemote => "took_remote",
            _ => "resolved",
        }));

    public void SetLagSource(Func<IReadOnlyList<StoreLag>> source) => _lagSource = source;

    public IReadOnlyList<StoreLag> GetLag() => _lagSource?.Invoke() ?? [];

    private IEnumerable<Measurement<long>> ObserveLagChanges()
    {
        foreach (var lag in GetLag())
        {
            yield return new Measurement<long>(lag.Changes, new KeyValuePair<string, object?>("store", lag.Store));
        }
    }

    private IEnumerable<Measurement<int>> ObserveFaulted()
    {
        foreach (var lag in GetLag())
        {
            yield return new Measurement<int>(lag.Faulted ? 1 : 0, new KeyValuePair<string, object?>("store", lag.Store));
        }
    }

    private IEnumerable<Measurement<double>> ObserveLagSeconds()
    {
        foreach (var lag in GetLag())
        {
            yield return new Measurement<double>(lag.Seconds, new KeyValuePair<string, object?>("store", lag.Store));
        }
    }
}
