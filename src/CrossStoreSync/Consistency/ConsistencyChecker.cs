using CrossStoreSync.Errors;

using System.Diagnostics;
using CrossStoreSync.Configuration;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Consistency;

/// <summary>The <see cref="IConsistencyChecker"/> behind DI: runs checks over the engine's stores and repairs through its write path.</summary>
internal sealed class ConsistencyChecker(SyncEngine engine, IOptions<CrossStoreSyncOptions> engineOptions, TimeProvider time, SyncMetrics metrics, ILoggerFactory loggerFactory) : IConsistencyChecker
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("CrossStoreSync.Consistency");

    public async Task<ConsistencyReport> CheckAsync(string collection, ConsistencyCheckOptions? options = null, IProgress<ConsistencyProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new ConsistencyCheckOptions();
        Validate(collection, options);
        await engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = engine.Topology;
        var selected = SelectReplicas(topology, options);

        // A replica that keeps this collection re-embedded under another name is checked through its route.
        var routed = new List<(ISyncStore Store, CollectionRoute Route)>();
        var replicas = new List<ISyncStore>();
        foreach (var replica in selected)
        {
            if (engine.Dispatchers.FirstOrDefault(d => d.Name == replica.Name)?.Routes.TryGetValue(collection, out var route) == true && !route.KeepSource)
            {
                routed.Add((replica, route));
            }
            else
            {
                replicas.Add(replica);
            }
        }

        using var activity = SyncTelemetry.ActivitySource.StartActivity("crossstoresync.consistency.check");
        activity?.SetTag("crossstoresync.collection", collection);
        activity?.SetTag("crossstoresync.consistency.mode", options.Mode.ToString());
        var startedAt = time.GetUtcNow();
        var started = time.GetTimestamp();
        var run = new ConsistencyRun(topology.Source, collection, options, progress);
        var accumulators = replicas.Select(r => (Store: r, Findings: new FindingAccumulator(r.Name, options.MaxReportedFindings))).ToArray();
        var estimates = new SamplingEstimate?[accumulators.Length];
        switch (options.Mode)
        {
            case ConsistencyCheckMode.Full:
                await run.CompareFullAsync(accumulators, cancellationToken).ConfigureAwait(false);
                break;
            case ConsistencyCheckMode.MemoryBounded:
                foreach (var (store, findings) in accumulators)
                {
                    await run.CompareBloomAsync(topology.Source, store, findings, cancellationToken).ConfigureAwait(false);
                }

                break;
            default:
                await run.CompareSampleAsync(accumulators, cancellationToken).ConfigureAwait(false);
                var total = await topology.Source.CountAsync(collection, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < accumulators.Length; i++)
                {
                    var findings = accumulators[i].Findings;
                    var trials = findings.Consistent + findings.Total;
                    var rate = trials == 0 ? 0 : (double)findings.Total / trials;
                    var (lower, upper) = WilsonInterval.Compute(findings.Total, trials, options.ConfidenceLevel);
                    estimates[i] = new SamplingEstimate(trials, findings.Total, rate, lower, upper, options.ConfidenceLevel, (long)Math.Round(rate * total));
                }

                break;
        }

        var reports = new StoreConsistencyReport[accumulators.Length + routed.Count];
        for (var i = 0; i < routed.Count; i++)
        {
            reports[accumulators.Length + i] = await RouteVerifier.CheckAsync(topology.Source, routed[i].Store, routed[i].Route, options, cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < reports.Length; i++)
        {
            if (i < accumulators.Length)
            {
                reports[i] = accumulators[i].Findings.ToReport(estimates[i]);
            }

            var findings = reports[i];
            var tag = new KeyValuePair<string, object?>("store", findings.Store);
            metrics.EntriesRead.Add(findings.EntriesRead, tag);
            Record(findings.Missing, tag, InconsistencyKind.Missing);
            Record(findings.Orphaned, tag, InconsistencyKind.Orphaned);
            Record(findings.Stale, tag, InconsistencyKind.Stale);
            Record(findings.Corrupted, tag, InconsistencyKind.Corrupted);
        }

        var duration = time.GetElapsedTime(started);
        metrics.CheckDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("mode", options.Mode.ToString()));
        var sourceEntities = accumulators.Length > 0 ? run.SourceEntities : await topology.Source.CountAsync(collection, cancellationToken).ConfigureAwait(false);
        var report = new ConsistencyReport(collection, topology.Source.Name, options.Mode, options.Deep, options.Range, sourceEntities, reports, startedAt, duration);
        SyncLog.CheckCompleted(_logger, collection, options.Mode.ToString(), sourceEntities, reports.Sum(r => r.Inconsistent), duration);
        return report;
    }

    public async Task<RepairResult> RepairAsync(ConsistencyReport report, bool dryRun = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        await engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var source = engine.Topology.Source;
        if (report.Source != source.Name)
        {
            throw new ArgumentException($"The report was made against source {SafeText.Quote(report.Source)}, but the engine's source is {SafeText.Quote(source.Name)}.", nameof(report));
        }

        // One change per key fixes it in every store: the change goes to the source and through the log to all replicas.
        var byKey = new Dictionary<EntityKey, (List<string> Stores, HlcTimestamp Newest)>();
        foreach (var store in report.Stores)
        {
            foreach (var finding in store.Findings)
            {
                if (!byKey.TryGetValue(finding.Key, out var entry))
                {
                    entry = ([], HlcTimestamp.Zero);
                }

                entry.Stores.Add(store.Store);
                var newest = Max(entry.Newest, Max(finding.SourceVersion ?? HlcTimestamp.Zero, finding.StoreVersion ?? HlcTimestamp.Zero));
                byKey[finding.Key] = (entry.Stores, newest);
            }
        }

        var actions = new List<RepairAction>(byKey.Count);
        var changes = new List<EntityChange>(byKey.Count);
        foreach (var (key, (stores, newest)) in byKey)
        {
            var current = await source.ReadAsync(key, cancellationToken).ConfigureAwait(false);

            // One step above anything seen: newer than every stored copy (so the version guards accept it), older
            // than any version the clock issues later (so a concurrent application write still wins).
            var version = new HlcTimestamp(Max(newest, current?.Version ?? HlcTimestamp.Zero).Value + 1);
            // The hash is computed again from what the source holds: after an edit made directly in the source, the
            // recorded one no longer describes the content, and the repair must not spread it to every store.
            var change = current is null ? EntityChange.Delete(key, version) : EntityChange.Upsert(current.Entity, version);
            changes.Add(change);
            actions.Add(new RepairAction(key, change.Kind, version, stores));
        }

        if (dryRun || changes.Count == 0)
        {
            return new RepairResult(dryRun, actions, null);
        }

        SyncTicket? ticket = null;
        var batch = engineOptions.Value.MaxWriteBatchSize;
        for (var start = 0; start < changes.Count; start += batch)
        {
            var chunk = changes.GetRange(start, Math.Min(batch, changes.Count - start)).ToArray();
            var written = await engine.WriteRepairsAsync(chunk, cancellationToken).ConfigureAwait(false);
            ticket = ticket is { } previous ? new SyncTicket(new Log.LsnRange(previous.Lsns.First, written.Lsns.Last), Max(previous.Version, written.Version)) : written;
        }

        metrics.Repaired.Add(changes.Count);
        SyncLog.RepairWritten(_logger, report.Collection, changes.Count);
        Activity.Current?.SetTag("crossstoresync.repaired", changes.Count);
        return new RepairResult(false, actions, ticket);
    }

    private static HlcTimestamp Max(HlcTimestamp a, HlcTimestamp b) => a >= b ? a : b;

    private void Record(long count, KeyValuePair<string, object?> store, InconsistencyKind kind)
    {
        if (count > 0)
        {
            metrics.Inconsistencies.Add(count, store, new KeyValuePair<string, object?>("kind", kind.ToString()));
        }
    }

    private void Validate(string collection, ConsistencyCheckOptions options)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        if (!engineOptions.Value.TryGetCollection(collection, out _))
        {
            throw new ArgumentException($"Collection {SafeText.Quote(collection)} is not configured; declare it with CrossStoreSyncOptions.AddCollection.", nameof(collection));
        }

        if (options.MerkleDepth is < 10 or > 24)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MerkleDepth, $"ConsistencyCheckOptions.MerkleDepth is {options.MerkleDepth}; it must be in 10..24.");
        }

        if (options.SampleFraction is <= 0 or > 1 || double.IsNaN(options.SampleFraction))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SampleFraction, $"ConsistencyCheckOptions.SampleFraction is {options.SampleFraction}; it must be in (0, 1].");
        }

        if (options.ConfidenceLevel is < 0.5 or > 0.999 || double.IsNaN(options.ConfidenceLevel))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ConfidenceLevel, $"ConsistencyCheckOptions.ConfidenceLevel is {options.ConfidenceLevel}; it must be in 0.5..0.999.");
        }

        if (options.BloomBitsPerKey is < 1 or > 64 || double.IsNaN(options.BloomBitsPerKey))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BloomBitsPerKey, $"ConsistencyCheckOptions.BloomBitsPerKey is {options.BloomBitsPerKey}; it must be in 1..64.");
        }

        if (options.MaxReportedFindings < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxReportedFindings, $"ConsistencyCheckOptions.MaxReportedFindings is {options.MaxReportedFindings}; it must not be negative.");
        }

        if (options.Range.First > options.Range.Last)
        {
            throw new ArgumentException($"ConsistencyCheckOptions.Range {options.Range} is empty: First must not exceed Last.", nameof(options));
        }
    }

    private static List<ISyncStore> SelectReplicas(StoreTopology topology, ConsistencyCheckOptions options)
    {
        if (options.Stores is null)
        {
            return [.. topology.Replicas];
        }

        var selected = new List<ISyncStore>();
        foreach (var name in options.Stores)
        {
            selected.Add(topology.Replicas.FirstOrDefault(r => r.Name == name)
                ?? throw new ArgumentException($"ConsistencyCheckOptions.Stores names {SafeText.Quote(name)}, which is not a replica; replicas are: {string.Join(", ", topology.Replicas.Select(r => r.Name))}.", nameof(options)));
        }

        return selected;
    }
}
