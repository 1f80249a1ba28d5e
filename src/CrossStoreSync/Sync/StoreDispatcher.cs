using System.Diagnostics;
using System.Runtime.InteropServices;
using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrossStoreSync.Sync;

/// <summary>
/// Applies the change log to one replica: reads committed entries after the store's durable cursor, coalesces them
/// by key (newest version wins), applies the batch with retries, isolates and dead-letters changes the store
/// rejects permanently, then advances and saves the cursor. One loop per store, so order per key holds.
/// </summary>
internal sealed partial class StoreDispatcher
{
    private readonly ISyncStore _store;
    private readonly IChangeLog _log;
    private readonly CrossStoreSyncOptions _options;
    private readonly TimeProvider _time;
    private readonly SyncMetrics _metrics;
    private readonly EventHub _events;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private readonly KeyValuePair<string, object?> _tag;

    // Reused across batches so that the steady-state dispatch path does not allocate per change.
    private readonly List<LogRecord> _records = [];
    private readonly List<LogRecord> _chosen = [];
    private readonly List<EntityChange> _changes = [];
    private readonly Dictionary<EntityKey, int> _index = [];
    private readonly EntityChange[] _single = new EntityChange[1];
    private long _lagSinceMs;
    private long _savedCursor;
    private long _lastCursorSave;
    private long _skipTo;
    private readonly Lock _routeGate = new();
    private Dictionary<string, CollectionRoute> _routes = new(StringComparer.Ordinal);
    private long _routesVersion;
    private volatile bool _released;
    private volatile bool _needsRebuild;

    private readonly ICompensationLog? _compensations;
    private readonly Action<string, CompensationRecord, string>? _compensationRequested;

    /// <param name="store">The replica.</param>
    /// <param name="log">The change log.</param>
    /// <param name="options">The engine's options.</param>
    /// <param name="time">The clock.</param>
    /// <param name="metrics">The instruments.</param>
    /// <param name="events">The event stream.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="compensationRequested">Told (store, record, reason) when a rejection became a durable compensation
    /// request instead of a dead letter; null where nothing compensates (benchmarks).</param>
    public StoreDispatcher(ISyncStore store, IChangeLog log, CrossStoreSyncOptions options, TimeProvider time, SyncMetrics metrics, EventHub events, ILogger logger, Action<string, CompensationRecord, string>? compensationRequested = null)
    {
        _compensations = compensationRequested is null ? null : log as ICompensationLog;
        _compensationRequested = compensationRequested;
        _store = store;
        _log = log;
        _options = options;
        _time = time;
        _metrics = metrics;
        _events = events;
        _logger = logger;
        _tag = new KeyValuePair<string, object?>("store", store.Name);
        _pipeline = ResiliencePipelines.ForReplica(store.Name, options, time, metrics, events, logger);
        _partitioned = log as IPartitionedChangeLog;
    }

    public string Name => _store.Name;

    public ISyncStore Store => _store;

    public CursorWatch Cursor { get; } = new();

    /// <summary>The cursor as last saved to the log (what a restart resumes from and what log retention reads).</summary>
    public CursorWatch SavedCursor { get; } = new();

    public WakeSignal Wake { get; } = new();

    public bool Faulted { get; private set; }

    /// <summary>Age of the oldest change read but not applied yet, in seconds.</summary>
    public double LagSeconds
    {
        get
        {
            var since = Volatile.Read(ref _lagSinceMs);
            return since == 0 ? 0 : Math.Max(0, (_time.GetUtcNow().ToUnixTimeMilliseconds() - since) / 1000.0);
        }
    }

    /// <summary>Loads the durable cursor, so status and waits are right before the loop runs.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var cursor = await LoadCursorAsync(cancellationToken).ConfigureAwait(false);
        _released = cursor > 0 || !_options.ReplicasAwaitingBackfill.Contains(Name);
    }

    /// <summary>Advances to the route version each step starts with, so a re-embedding knows when its route is live.</summary>
    public CursorWatch RoutesObserved { get; } = new();

    /// <summary>The routes in force (copy-on-write; replaced whole).</summary>
    public IReadOnlyDictionary<string, CollectionRoute> Routes => Volatile.Read(ref _routes);

    /// <summary>Installs or replaces (route non-null) or removes (null) the route of a source collection; returns the new route version.</summary>
    public long SetRoute(string sourceCollection, CollectionRoute? route)
    {
        lock (_routeGate)
        {
            var next = new Dictionary<string, CollectionRoute>(_routes, StringComparer.Ordinal);
            if (route is null)
            {
                next.Remove(sourceCollection);
            }
            else
            {
                next[sourceCollection] = route;
            }

            Volatile.Write(ref _routes, next);
            var version = Interlocked.Increment(ref _routesVersion);
            Wake.Set();
            return version;
        }
    }

    /// <summary>Whether the dispatcher waits for a migration's <see cref="SkipTo"/> before reading the log.</summary>
    public bool AwaitingBackfill => !_released;

    /// <summary>
    /// True when the log no longer holds changes this store has not applied (it fell behind past the retention cap, or
    /// its cursor is below the truncated log): it applies nothing until a migration rebuilds it.
    /// </summary>
    public bool NeedsRebuild => _needsRebuild;

    /// <summary>Stops the dispatcher before its next read; a migration's <see cref="SkipTo"/> starts it again.</summary>
    public void MarkNeedsRebuild()
    {
        _needsRebuild = true;
        _released = false;
        Wake.Set();
    }

    /// <summary>Ends the rebuild state once the rebuild is verified; releases the dispatcher if a migration has not already.</summary>
    public void ClearNeedsRebuild()
    {
        _needsRebuild = false;
        _released = true;
        Wake.Set();
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // The loop outlives whatever operation started the engine; its apply spans must not become children of it.
        Activity.Current = null;
        if (_partitioned is not null)
        {
            await RunPartitionedAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        var cursor = Cursor.Value;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    cursor = await StepAsync(cursor, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    // Anything unexpected (the log's database failing, say): back off, then resume from the durable
                    // cursor. Replays are safe because every apply is version-guarded.
                    SyncLog.DispatcherFailed(_logger, Name, ex);
                    await Wake.WaitAsync(_options.RetryMaxDelay < TimeSpan.FromSeconds(1) ? _options.RetryMaxDelay : TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                    cursor = await LoadCursorAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // Save what was applied since the last checkpoint, so a clean restart replays nothing.
            try
            {
                await SaveCursorAsync(cursor, force: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                SyncLog.DispatcherFailed(_logger, Name, ex);
            }
        }
    }

    private async Task<long> LoadCursorAsync(CancellationToken cancellationToken)
    {
        var cursor = await _log.GetCursorAsync(Name, cancellationToken).ConfigureAwait(false);
        _savedCursor = cursor;
        _lastCursorSave = _time.GetTimestamp();
        Cursor.Advance(cursor);
        SavedCursor.Advance(cursor);
        SyncLog.DispatcherResumed(_logger, Name, cursor);
        return cursor;
    }

    /// <summary>Processes at most one batch; returns the new cursor.</summary>
    /// <summary>
    /// Moves the cursor forward to <paramref name="lsn"/> (never back) before the next read: a backfill of an empty
    /// store from the source covers every change up to it, so replaying them would only repeat the backfill's work.
    /// </summary>
    public void SkipTo(long lsn)
    {
        _released = true;
        var current = Volatile.Read(ref _skipTo);
        while (lsn > current)
        {
            var seen = Interlocked.CompareExchange(ref _skipTo, lsn, current);
            if (seen == current)
            {
                break;
            }

            current = seen;
        }

        Wake.Set();
    }

    internal async Task<long> StepAsync(long cursor, CancellationToken cancellationToken)
    {
        // Every change this step reads is routed by the routes read here: a route installed before this line applies
        // to every change read after it.
        var routesVersion = Interlocked.Read(ref _routesVersion);
        var routes = Volatile.Read(ref _routes);
        RoutesObserved.Advance(routesVersion);
        if (!_released)
        {
            await Wake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            return cursor;
        }

        var skip = Volatile.Read(ref _skipTo);
        if (skip > cursor)
        {
            cursor = skip;
            Cursor.Advance(cursor);
            await SaveCursorAsync(cursor, force: true, cancellationToken).ConfigureAwait(false);
            SyncLog.CursorSkipped(_logger, Name, cursor);
        }

        _records.Clear();
        LogReadResult read;
        try
        {
            read = await _log.ReadCommittedAsync(cursor, _options.DispatchBatchSize, _records, cancellationToken).ConfigureAwait(false);
            Faulted = false;
        }
        catch (ChangeLogCorruptedException ex)
        {
            await ReportCorruptionAsync(ex, cursor, cancellationToken).ConfigureAwait(false);
            return cursor;
        }

        if (read.ReadThrough <= cursor)
        {
            Volatile.Write(ref _lagSinceMs, 0);
            await SaveCursorAsync(cursor, force: true, cancellationToken).ConfigureAwait(false);
            await Wake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            return cursor;
        }

        await ProcessRecordsAsync(routes, cancellationToken).ConfigureAwait(false);
        Cursor.Advance(read.ReadThrough);
        await SaveCursorAsync(read.ReadThrough, force: false, cancellationToken).ConfigureAwait(false);
        if (_records.Count < _options.DispatchBatchSize)
        {
            Volatile.Write(ref _lagSinceMs, 0);
        }

        return read.ReadThrough;
    }

    /// <summary>
    /// Never skips a corrupted record: stops there, says so loudly, and looks again after a poll interval (an operator
    /// may repair it). The event repeats on every attempt, so a subscriber that arrives later still learns why it is stuck.
    /// </summary>
    private async Task ReportCorruptionAsync(ChangeLogCorruptedException error, long cursor, CancellationToken cancellationToken)
    {
        if (!Faulted)
        {
            Faulted = true;
            SyncLog.LogCorrupted(_logger, Name, cursor, error.Lsn, error.Field, error);
        }

        _events.Publish(new SyncEvent(SyncEventKind.Faulted, Name, error.Lsn, error.Lsn, 0, null, error.Message, 0, _time.GetUtcNow()));
        await Wake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Coalesces, routes and applies the records just read (nothing when there are none).</summary>
    private async Task ProcessRecordsAsync(IReadOnlyDictionary<string, CollectionRoute> routes, CancellationToken cancellationToken)
    {
        if (_records.Count == 0)
        {
            return;
        }

        if (Volatile.Read(ref _lagSinceMs) == 0)
        {
            Volatile.Write(ref _lagSinceMs, Math.Max(1, _records[0].Change.Version.WallTimeMs));
        }

        Coalesce();
        if (routes.Count > 0)
        {
            await RouteAsync(routes, cancellationToken).ConfigureAwait(false);
        }

        if (_changes.Count > 0)
        {
            await ApplyBatchAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Persists the cursor at most once per <see cref="CrossStoreSyncOptions.CursorCheckpointInterval"/> while busy, and
    /// whenever the dispatcher catches up. A cursor lost in a crash only replays changes, which the version guard makes
    /// harmless; saving it after every batch would add a durable commit per batch to the log.
    /// </summary>
    private async Task SaveCursorAsync(long cursor, bool force, CancellationToken cancellationToken)
    {
        if (cursor <= _savedCursor || (!force && _time.GetElapsedTime(_lastCursorSave) < _options.CursorCheckpointInterval))
        {
            return;
        }

        await _log.SetCursorAsync(Name, cursor, cancellationToken).ConfigureAwait(false);
        _savedCursor = cursor;
        _lastCursorSave = _time.GetTimestamp();
        SavedCursor.Advance(cursor);
    }

    private void Coalesce()
    {
        _index.Clear();
        _chosen.Clear();
        _changes.Clear();
        foreach (var record in _records)
        {
            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_index, record.Change.Key, out var exists);
            if (!exists)
            {
                slot = _chosen.Count;
                _chosen.Add(record);
                _changes.Add(record.Change);
            }
            else if (record.Change.Version >= _chosen[slot].Change.Version)
            {
                // Newest version wins, not newest LSN: concurrent writers may append in a different order than they
                // took versions, and the store's version guard would drop an older one anyway.
                _chosen[slot] = record;
                _changes[slot] = record.Change;
            }
        }
    }

    /// <summary>
    /// Rewrites the batch for routed collections: each change of a routed collection becomes its transformed copy in
    /// the target collection, plus the original while the route keeps the source collection. Each copy stays paired
    /// with its log record, so a copy the store rejects is dead-lettered (and replayed) like any change. A change the
    /// transform rejects is dead-lettered here.
    /// </summary>
    private async Task RouteAsync(IReadOnlyDictionary<string, CollectionRoute> routes, CancellationToken cancellationToken)
    {
        var count = _changes.Count;
        for (var i = 0; i < count; i++)
        {
            var change = _changes[i];
            if (!routes.TryGetValue(change.Key.Collection, out var route))
            {
                _changes.Add(change);
                _chosen.Add(_chosen[i]);
                continue;
            }

            if (route.KeepSource)
            {
                _changes.Add(change);
                _chosen.Add(_chosen[i]);
            }

            var (routed, problem) = await route.RouteAsync(change, cancellationToken).ConfigureAwait(false);
            if (routed is null)
            {
                await RejectAsync(_chosen[i], new SyncStoreException($"Route of {SafeText.Quote(change.Key)} to collection {SafeText.Quote(route.TargetCollection)}: {problem}", false, Name, change.Key, "route"), cancellationToken).ConfigureAwait(false);
                continue;
            }

            _changes.Add(routed);
            _chosen.Add(_chosen[i]);
        }

        _changes.RemoveRange(0, count);
        _chosen.RemoveRange(0, count);
    }

    private async Task ApplyBatchAsync(CancellationToken cancellationToken)
    {
        using var activity = SyncTelemetry.ActivitySource.StartActivity("crossstoresync.apply");
        activity?.SetTag("crossstoresync.store", Name);
        activity?.SetTag("crossstoresync.batch.size", _changes.Count);
        var started = _time.GetTimestamp();
        try
        {
            await _pipeline.ExecuteAsync(static (self, ct) => self._store.ApplyAsync(self._changes, ct), this, cancellationToken).ConfigureAwait(false);
            _metrics.Applied.Add(_changes.Count, _tag);
            if (_events.HasSubscribers)
            {
                _events.Publish(new SyncEvent(SyncEventKind.Applied, Name, _records[0].Lsn, _records[^1].Lsn, _changes.Count, null, null, 0, _time.GetUtcNow()));
            }
        }
        catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, cancellationToken))
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            await IsolateAsync(ex, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics.ApplyDuration.Record(_time.GetElapsedTime(started).TotalSeconds, _tag);
        }
    }

    /// <summary>The batch was rejected permanently: apply its changes one by one so only the bad ones are dead-lettered.</summary>
    private async Task IsolateAsync(Exception batchError, CancellationToken cancellationToken)
    {
        if (_changes.Count == 1)
        {
            await RejectAsync(_chosen[0], batchError, cancellationToken).ConfigureAwait(false);
            return;
        }

        var applied = 0;
        for (var i = 0; i < _changes.Count; i++)
        {
            _single[0] = _changes[i];
            try
            {
                await _pipeline.ExecuteAsync(static (self, ct) => self._store.ApplyAsync(self._single, ct), this, cancellationToken).ConfigureAwait(false);
                applied++;
            }
            catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, cancellationToken))
            {
                await RejectAsync(_chosen[i], ex, cancellationToken).ConfigureAwait(false);
            }
        }

        _single[0] = null!;
        _metrics.Applied.Add(applied, _tag);
        if (applied > 0 && _events.HasSubscribers)
        {
            _events.Publish(new SyncEvent(SyncEventKind.Applied, Name, _records[0].Lsn, _records[^1].Lsn, applied, null, null, 0, _time.GetUtcNow()));
        }
    }

    /// <summary>
    /// A change the store rejected for good: when it is a compensable write, the log records the request to compensate
    /// it (durably, before the cursor moves past it); otherwise it is dead-lettered. Either way the rest of the batch
    /// goes on.
    /// </summary>
    private async Task RejectAsync(LogRecord record, Exception error, CancellationToken cancellationToken)
    {
        var reason = $"{error.GetType().Name}: {error.Message}";
        if (_compensations is not null
            && await _compensations.RequestCompensationAsync(record.Change.Key, record.Change.Version, Name, reason, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false) is { } request)
        {
            _compensationRequested!(Name, request, reason);
            return;
        }

        await _log.AddDeadLetterAsync(Name, record, reason, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        _metrics.DeadLetters.Add(1, _tag);
        SyncLog.DeadLettered(_logger, Name, SafeText.Quote(record.Change.Key), record.Lsn, SafeText.Quote(reason, 1000));
        _events.Publish(new SyncEvent(SyncEventKind.DeadLettered, Name, record.Lsn, record.Lsn, 1, record.Change.Key, reason, 0, _time.GetUtcNow()));
    }
}
