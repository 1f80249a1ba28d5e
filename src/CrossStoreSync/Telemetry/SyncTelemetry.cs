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
internal readonly record struct StoreLag(string Store, long Changes, double Seconds, bool Faulted, bool NeedsRebuild = false);

/// <summary>The library's instruments. One instance per service provider, created from <see cref="IMeterFactory"/>.</summary>
internal sealed class SyncMetrics
{
    private Func<IReadOnlyList<StoreLag>>? _lagSource;
    private RetentionSnapshot? _retention;

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
        Truncated = Meter.CreateCounter<long>("crossstoresync.log.truncated", "{entry}", "Log entries removed by the retention task.");
        TombstonesPurged = Meter.CreateCounter<long>("crossstoresync.store.tombstones_purged", "{tombstone}", "Tombstones purged from a store after TombstoneRetention.");
        DeadLettersExpired = Meter.CreateCounter<long>("crossstoresync.dead_letters.expired", "{change}", "Dead letters removed after DeadLetterRetention, by store.");
        Compensations = Meter.CreateCounter<long>("crossstoresync.compensations", "{change}", "Writes a replica rejected under ReplicaRejectionPolicy.Compensate, by rejecting store and outcome (compensated, superseded, failed).");
        Meter.CreateObservableGauge("crossstoresync.log.retained", ObserveRetainedEntries, "{entry}", "Entries the change log holds (at the last retention round).");
        Meter.CreateObservableGauge("crossstoresync.log.retained.size", ObserveRetainedBytes, "By", "Estimated bytes of the entries the change log holds (at the last retention round).");
        Meter.CreateObservableGauge("crossstoresync.retention.behind", ObserveHolders, "{entry}", "Entries between each store's, migration's or holder's position and the head, by holder.");
        Meter.CreateObservableGauge("crossstoresync.dead_letters.stored", ObserveDeadLetters, "{change}", "Dead letters stored, by store (at the last retention round).");
        Meter.CreateObservableGauge("crossstoresync.store.needs_rebuild", ObserveNeedsRebuild, "{store}", "1 for a replica that fell behind past the log's retention and waits for a rebuild, else 0.");
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
    /// <summary>Log entries removed by retention.</summary>
    public Counter<long> Truncated { get; }

    /// <summary>Tombstones purged; tag <c>store</c>.</summary>
    public Counter<long> TombstonesPurged { get; }

    /// <summary>Dead letters removed by retention; tag <c>store</c>.</summary>
    public Counter<long> DeadLettersExpired { get; }

    /// <summary>Resolved compensations; tags <c>store</c> (the store that rejected the write) and <c>outcome</c>.</summary>
    public Counter<long> Compensations { get; }

    public void SetLagSource(Func<IReadOnlyList<StoreLag>> source) => _lagSource = source;

    /// <summary>The figures of the latest retention round, or null before the first.</summary>
    public RetentionSnapshot? Retention
    {
        get => Volatile.Read(ref _retention);
        set => Volatile.Write(ref _retention, value);
    }

    public IReadOnlyList<StoreLag> GetLag() => _lagSource?.Invoke() ?? [];

    private IEnumerable<Measurement<long>> ObserveLagChanges()
    {
        foreach (var lag in GetLag())
        {
            yield return new Measurement<long>(lag.Changes, new KeyValuePair<string, object?>("store", lag.Store));
        }
    }

    private IEnumerable<Measurement<long>> ObserveRetainedEntries()
    {
        if (Retention is { } r)
        {
            yield return new Measurement<long>(r.RetainedEntries);
        }
    }

    private IEnumerable<Measurement<long>> ObserveRetainedBytes()
    {
        if (Retention is { } r)
        {
            yield return new Measurement<long>(r.RetainedBytes);
        }
    }

    private IEnumerable<Measurement<long>> ObserveHolders()
    {
        if (Retention is { } r)
        {
            foreach (var holder in r.Holders)
            {
                yield return new Measurement<long>(Math.Max(0, r.Head - holder.Position), new KeyValuePair<string, object?>("holder", holder.Name));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveDeadLetters()
    {
        if (Retention is { } r)
        {
            // Every replica is reported, with 0 when it has none, so a drop to zero shows.
            var reported = new HashSet<string>(StringComparer.Ordinal);
            foreach (var lag in GetLag())
            {
                reported.Add(lag.Store);
                yield return new Measurement<long>(r.DeadLetters.GetValueOrDefault(lag.Store), new KeyValuePair<string, object?>("store", lag.Store));
            }

            foreach (var (store, count) in r.DeadLetters)
            {
                if (!reported.Contains(store))
                {
                    yield return new Measurement<long>(count, new KeyValuePair<string, object?>("store", store));
                }
            }
        }
    }

    private IEnumerable<Measurement<int>> ObserveNeedsRebuild()
    {
        foreach (var lag in GetLag())
        {
            yield return new Measurement<int>(lag.NeedsRebuild ? 1 : 0, new KeyValuePair<string, object?>("store", lag.Store));
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

/// <summary>What holds the log back: a store's durable cursor, an unfinished migration, pending writes or a registered holder.</summary>
internal enum RetentionHolderKind
{
    Store = 0,
    Migration = 1,
    Pending = 2,
    Holder = 3,
}

/// <summary>One position below which the log may be truncated, and who needs it.</summary>
/// <param name="Name">The store, migration or holder.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Position">Every entry at or below it is no longer needed by it.</param>
internal readonly record struct RetentionPosition(string Name, RetentionHolderKind Kind, long Position);

/// <summary>The figures of one retention round, for the gauges and the health check.</summary>
internal sealed record RetentionSnapshot(
    long Head,
    long TruncatedThrough,
    long LowWaterMark,
    long RetainedEntries,
    long RetainedBytes,
    IReadOnlyList<RetentionPosition> Holders,
    IReadOnlyList<string> HoldingBack,
    IReadOnlyDictionary<string, long> DeadLetters,
    long UnhealthyRetainedEntries);
