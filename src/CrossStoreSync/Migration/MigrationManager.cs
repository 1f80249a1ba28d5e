using CrossStoreSync.Errors;

using System.Collections.Concurrent;
using System.Diagnostics;
using CrossStoreSync.Configuration;
using CrossStoreSync.Consistency;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace CrossStoreSync.Migration;

/// <summary>
/// Runs backfills. Each migration splits every collection into <c>Workers</c> disjoint bucket ranges, streams each
/// range from the source in (bucket, id) order, and writes batches through the target's version-guarded apply, tagged
/// with the migration id. After every batch the range's position is saved as a checkpoint, so a killed process redoes
/// at most one batch per worker.
/// </summary>
/// <remarks>
/// Concurrent writes are never lost: the start position is taken before the scan, and every change after it reaches
/// the target through its dispatcher, whose cursor is at or before that position. A change the scan also saw is applied
/// twice, which the version guard makes harmless; a delete applied before the scan's older copy arrives leaves a
/// tombstone that keeps the copy out.
/// </remarks>
internal sealed partial class MigrationManager : IMigrationManager
{
    private const int MaxListedFailures = 1000;
    private readonly SyncEngine _engine;
    private readonly IConsistencyChecker _checker;
    private readonly CrossStoreSyncOptions _options;
    private readonly TimeProvider _time;
    private readonly SyncMetrics _metrics;
    private readonly ILogger _logger;
    private readonly IReadOnlyDictionary<string, EntityTransform> _transforms;
    // Runs in this process, each with the log head read before it started (long.MaxValue for a rollback): until a run
    // has saved its header, this is what holds log retention back for it.
    private readonly ConcurrentDictionary<string, long> _running = new(StringComparer.Ordinal);

    public MigrationManager(
        SyncEngine engine,
        IConsistencyChecker checker,
        IOptions<CrossStoreSyncOptions> options,
        IEnumerable<TransformRegistration> transforms,
        TimeProvider time,
        SyncMetrics metrics,
        ILoggerFactory loggerFactory)
    {
        _engine = engine;
        _checker = checker;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("CrossStoreSync.Migration");
        var byName = new Dictionary<string, EntityTransform>(StringComparer.Ordinal);
        foreach (var registration in transforms)
        {
            byName[registration.Name] = registration.Transform;
        }

        _transforms = byName;
    }

    public event EventHandler<MigrationProgress>? ProgressChanged;

    /// <summary>
    /// The lowest log position a migration running in this process may still need before its header (with its start
    /// position) is saved: the head read when it started. Null when none runs.
    /// </summary>
    internal long? StartingBound
    {
        get
        {
            long? bound = null;
            foreach (var (_, head) in _running)
            {
                if (head != long.MaxValue && (bound is null || head < bound))
                {
                    bound = head;
                }
            }

            return bound;
        }
    }

    public async Task<MigrationReport> RunAsync(MigrationRequest request, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ValidateShape(request);
        await _engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = _engine.Topology;
        var plan = ResolvePlan(request, topology);
        var head = await topology.Log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false);
        if (!_running.TryAdd(request.Id, head))
        {
            throw new InvalidOperationException($"Migration {SafeText.Quote(request.Id)} is already running in this process.");
        }

        try
        {
            using var activity = SyncTelemetry.ActivitySource.StartActivity("crossstoresync.migration");
            activity?.SetTag("crossstoresync.migration.id", request.Id);
            activity?.SetTag("crossstoresync.store", plan.Target.Name);
            var run = new Run(this, request, plan, progress, cancellationToken);
            return await run.ExecuteAsync().ConfigureAwait(false);
        }
        finally
        {
            _running.TryRemove(request.Id, out _);
        }
    }

    public async Task<MigrationRollbackResult> RollbackAsync(string migrationId, CancellationToken cancellationToken = default)
    {
        ValidateId(migrationId);
        await _engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var log = _engine.Topology.Log;
        var header = await LoadHeaderAsync(log, migrationId, cancellationToken).ConfigureAwait(false)
            ?? throw new ArgumentException($"No migration with id {SafeText.Quote(migrationId)} is recorded.", nameof(migrationId));
        var target = _engine.Topology.Replicas.FirstOrDefault(r => r.Name == header.Target)
            ?? throw new InvalidOperationException($"Migration {SafeText.Quote(migrationId)} wrote into store {SafeText.Quote(header.Target)}, which is no longer registered.");
        if (!_running.TryAdd(migrationId, long.MaxValue))
        {
            throw new InvalidOperationException($"Migration {SafeText.Quote(migrationId)} is running in this process; cancel it before rolling it back.");
        }

        try
        {
            if (header.TargetCollection is not null)
            {
                // Stop routing first, so nothing new is written into the collection being emptied.
                await _engine.RemoveRouteAsync(header.Target, header.Collections[0], cancellationToken).ConfigureAwait(false);
            }

            long removed = 0;
            foreach (var collection in TargetCollections(header))
            {
                removed += await target.RemoveByOriginAsync(collection, migrationId, cancellationToken).ConfigureAwait(false);
            }

            header.Phase = MigrationPhase.RolledBack;
            await log.SetCheckpointAsync(MigrationHeader.Name(migrationId), MigrationJson.Write(header), cancellationToken).ConfigureAwait(false);
            foreach (var name in await log.ListCheckpointsAsync(MigrationHeader.Name(migrationId) + "/", cancellationToken).ConfigureAwait(false))
            {
                await log.SetCheckpointAsync(name, null, cancellationToken).ConfigureAwait(false);
            }

            SyncLog.MigrationRolledBack(_logger, migrationId, header.Target, removed);
            Publish(null, new MigrationProgress(migrationId, MigrationPhase.RolledBack, 0, header.Total, 0, null, 0, 0));
            return new MigrationRollbackResult(migrationId, header.Target, removed);
        }
        finally
        {
            _running.TryRemove(migrationId, out _);
        }
    }

    public async Task<IReadOnlyList<MigrationStatus>> ListAsync(CancellationToken cancellationToken = default)
    {
        await _engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var log = _engine.Topology.Log;
        var result = new List<MigrationStatus>();
        foreach (var name in await log.ListCheckpointsAsync("migration/", cancellationToken).ConfigureAwait(false))
        {
            if (name.IndexOf('/', "migration/".Length) >= 0)
            {
                continue; // a unit, not a header
            }

            var header = MigrationJson.ReadHeader((await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false))!, name);
            // A rolled-back migration keeps only its header.
            var done = header.Phase == MigrationPhase.RolledBack ? 0 : (await LoadUnitsAsync(log, header, cancellationToken).ConfigureAwait(false)).Sum(u => u.Written + u.Failed);
            result.Add(new MigrationStatus(header.Id, header.Target, header.Phase, done, header.StartLsn));
        }

        return result;
    }

    private static IEnumerable<string> TargetCollections(MigrationHeader header) =>
        header.TargetCollection is { } target ? [target] : header.Collections;

    private static async Task<MigrationHeader?> LoadHeaderAsync(IChangeLog log, string id, CancellationToken cancellationToken)
    {
        var name = MigrationHeader.Name(id);
        var json = await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false);
        return json is null ? null : MigrationJson.ReadHeader(json, name);
    }

    private static async Task<MigrationUnit[]> LoadUnitsAsync(IChangeLog log, MigrationHeader header, CancellationToken cancellationToken)
    {
        var units = new MigrationUnit[header.Units];
        for (var i = 0; i < units.Length; i++)
        {
            var name = MigrationUnit.Name(header.Id, i);
            var json = await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidDataException($"Migration {SafeText.Quote(header.Id)} lacks its checkpoint {SafeText.Quote(name)}; roll it back and start it under a new id.");
            units[i] = MigrationJson.ReadUnit(json, name);
        }

        return units;
    }

    private static void ValidateId(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (id.Length is < 1 or > 64 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new ArgumentException($"MigrationRequest.Id {SafeText.Quote(id)} is invalid: use 1..64 characters of A-Z, a-z, 0-9, '.', '_' or '-'.", nameof(id));
        }
    }

    private static void ValidateShape(MigrationRequest request)
    {
        ValidateId(request.Id);
        if (string.IsNullOrWhiteSpace(request.Target))
        {
            throw new ArgumentException($"MigrationRequest.Target {SafeText.Quote(request.Target)} is empty; name a registered replica store.", nameof(request));
        }

        Check(request.Workers is >= 1 and <= 64, nameof(request.Workers), request.Workers, "1..64");
        Check(request.MinBatchSize is >= 1 and <= 100_000, nameof(request.MinBatchSize), request.MinBatchSize, "1..100000");
        Check(request.MaxBatchSize >= request.MinBatchSize && request.MaxBatchSize <= 100_000, nameof(request.MaxBatchSize), request.MaxBatchSize, $"MinBatchSize ({request.MinBatchSize})..100000");
        Check(request.InitialBatchSize >= request.MinBatchSize && request.InitialBatchSize <= request.MaxBatchSize, nameof(request.InitialBatchSize), request.InitialBatchSize, $"{request.MinBatchSize}..{request.MaxBatchSize}");
        Check(request.TargetBatchLatency > TimeSpan.Zero, nameof(request.TargetBatchLatency), request.TargetBatchLatency, "positive");
        Check(request.MaxRetries is >= 0 and <= 100, nameof(request.MaxRetries), request.MaxRetries, "0..100");
        Check(request.VerifyCatchUpTimeout > TimeSpan.Zero, nameof(request.VerifyCatchUpTimeout), request.VerifyCatchUpTimeout, "positive");
        if (request.TargetCollection is not null && request.TransformName is null)
        {
            throw new ArgumentException($"MigrationRequest.TargetCollection is {SafeText.Quote(request.TargetCollection)} but TransformName is null; a re-embedding needs a transform.", nameof(request));
        }

        static void Check(bool ok, string field, object value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException("request", value, $"MigrationRequest.{field} is {value}; it must be {expected}.");
            }
        }
    }

    private Plan ResolvePlan(MigrationRequest request, StoreTopology topology)
    {
        if (request.Source is not null && request.Source != topology.Source.Name)
        {
            throw new ArgumentException($"MigrationRequest.Source {SafeText.Quote(request.Source)} is unknown; the only source is the source of truth {SafeText.Quote(topology.Source.Name)}.", nameof(request));
        }

        var target = topology.Replicas.FirstOrDefault(r => r.Name == request.Target)
            ?? throw new ArgumentException($"MigrationRequest.Target {SafeText.Quote(request.Target)} is not a registered replica; replicas are: {string.Join(", ", topology.Replicas.Select(r => r.Name))}.", nameof(request));
        var dispatcher = _engine.Dispatchers.First(d => d.Name == target.Name);

        var configured = _options.Collections.Select(c => c.Name).Order(StringComparer.Ordinal).ToArray();
        var collections = request.Collections?.ToArray() ?? configured;
        if (collections.Length == 0)
        {
            throw new ArgumentException("MigrationRequest.Collections is empty; name at least one configured collection.", nameof(request));
        }

        foreach (var collection in collections)
        {
            if (collection is null || !_options.TryGetCollection(collection, out _))
            {
                throw new ArgumentException($"MigrationRequest.Collections names {SafeText.Quote(collection)}, which is not configured; configured collections are: {string.Join(", ", configured)}.", nameof(request));
            }
        }

        if (collections.Distinct(StringComparer.Ordinal).Count() != collections.Length)
        {
            throw new ArgumentException($"MigrationRequest.Collections lists a collection twice: {string.Join(", ", collections)}.", nameof(request));
        }

        if (dispatcher.NeedsRebuild && !request.Verify)
        {
            throw new ArgumentException($"Store {SafeText.Quote(target.Name)} needs a rebuild (it fell behind past the log's retention); a rebuild must be verified, so MigrationRequest.Verify cannot be false.", nameof(request));
        }

        if (dispatcher.AwaitingBackfill && (collections.Length != configured.Length || request.TargetCollection is not null))
        {
            // Its dispatcher starts only when a backfill of everything sets its cursor; a partial one would leave it idle.
            throw new ArgumentException(
                $"Store {SafeText.Quote(target.Name)} awaits a backfill of all collections (CrossStoreSyncOptions.ReplicasAwaitingBackfill) before it reads the log; MigrationRequest.Collections lists [{string.Join(", ", collections)}]{(request.TargetCollection is null ? string.Empty : " with TargetCollection " + SafeText.Quote(request.TargetCollection))}. Backfill every collection first.",
                nameof(request));
        }

        EntityTransform? transform = null;
        if (request.TransformName is { } transformName && !_transforms.TryGetValue(transformName, out transform))
        {
            throw new ArgumentException($"MigrationRequest.TransformName {SafeText.Quote(transformName)} is not registered; register it with AddTransform. Registered: {string.Join(", ", _transforms.Keys)}.", nameof(request));
        }

        CollectionDefinition? targetDefinition = null;
        if (request.TargetCollection is { } targetCollection)
        {
            if (collections.Length != 1)
            {
                throw new ArgumentException($"MigrationRequest.TargetCollection {SafeText.Quote(targetCollection)} needs exactly one source collection, but Collections lists {collections.Length}.", nameof(request));
            }

            if (!_options.TryGetCollection(targetCollection, out targetDefinition))
            {
                throw new ArgumentException($"MigrationRequest.TargetCollection {SafeText.Quote(targetCollection)} is not configured; declare it with AddCollection and its vector dimension.", nameof(request));
            }

            if (targetCollection == collections[0])
            {
                throw new ArgumentException($"MigrationRequest.TargetCollection {SafeText.Quote(targetCollection)} is the source collection itself; re-embed into a new collection.", nameof(request));
            }
        }

        return new Plan(topology.Log, topology.Source, target, dispatcher, collections, transform, targetDefinition);
    }

    private void Publish(IProgress<MigrationProgress>? progress, MigrationProgress value)
    {
        progress?.Report(value);
        try
        {
            ProgressChanged?.Invoke(this, value);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A subscriber's failure must not stop a migration that is writing correctly.
            SyncLog.EventSubscriberFailed(_logger, ex);
        }
    }

    private sealed record Plan(
        IChangeLog Log,
        IDocumentStore Source,
        ISyncStore Target,
        StoreDispatcher Dispatcher,
        string[] Collections,
        EntityTransform? Transform,
        CollectionDefinition? TargetDefinition);
}

/// <summary>A named transform registered with <c>AddTransform</c>.</summary>
internal sealed record TransformRegistration(string Name, EntityTransform Transform);
