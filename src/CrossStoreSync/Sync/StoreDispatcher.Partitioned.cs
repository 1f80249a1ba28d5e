using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

/// <summary>
/// Dispatch of a change log shared by several processes (<see cref="IPartitionedChangeLog"/>): this process applies only
/// the partitions whose leases it holds, each from its own cursor, in one loop per store, so order per key holds (a
/// key's changes are all in one partition and one worker holds it at a time). Leases are renewed every third of
/// <see cref="Configuration.CrossStoreSyncOptions.PartitionLeaseDuration"/>; a worker that loses one (it stalled past the
/// lease) stops dispatching that partition, and the version guard makes the overlap harmless. The store's
/// <see cref="Cursor"/> is the lowest cursor of all partitions, so waits and status mean "applied everywhere".
/// </summary>
internal sealed partial class StoreDispatcher
{
    private readonly IPartitionedChangeLog? _partitioned;
    private readonly List<int> _owned = [];
    private readonly List<long> _ownedCursors = [];
    private long[] _allCursors = [];
    private long _lastRenewal;
    private long _observedHead;
    private long _lastRefresh;
    private bool _ownedDirty;

    /// <summary>
    /// The newest log position this dispatcher has seen, appended by any process (partitioned logs only; 0 otherwise).
    /// The engine's head counts only its own appends, so lag in a process that dispatches but does not write uses this.
    /// </summary>
    public long ObservedHead => Volatile.Read(ref _observedHead);

    private async Task RunPartitionedAsync(CancellationToken cancellationToken)
    {
        var log = _partitioned!;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    if (_time.GetElapsedTime(_lastRenewal) >= _options.PartitionLeaseDuration / 3)
                    {
                        await RenewLeasesAsync(log, cancellationToken).ConfigureAwait(false);
                    }

                    await PartitionStepAsync(log, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    // The log's database failed, say. Drop what is held in memory and start over from the saved
                    // cursors with fresh leases; whatever is replayed is version-guarded.
                    SyncLog.DispatcherFailed(_logger, Name, ex);
                    _owned.Clear();
                    _ownedCursors.Clear();

                    _lastRenewal = 0;
                    await Wake.WaitAsync(_options.RetryMaxDelay < TimeSpan.FromSeconds(1) ? _options.RetryMaxDelay : TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // Save what was applied and hand the partitions back, so the other workers take them over at once rather
            // than after the lease expires.
            try
            {
                if (_owned.Count > 0)
                {
                    await log.SavePartitionCursorsAsync(Name, _options.WorkerId, _owned, _ownedCursors, CancellationToken.None).ConfigureAwait(false);
                    await log.ReleasePartitionsAsync(Name, _options.WorkerId, _owned, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                SyncLog.DispatcherFailed(_logger, Name, ex);
            }
        }
    }

    private async Task RenewLeasesAsync(IPartitionedChangeLog log, CancellationToken cancellationToken)
    {
        var worker = _options.WorkerId;
        var leases = await log.AcquirePartitionsAsync(Name, worker, _options.PartitionLeaseDuration, cancellationToken).ConfigureAwait(false);
        _lastRenewal = _time.GetTimestamp();

        // Lost: held in memory, not in the log any more (the lease expired and another worker claimed it).
        var changed = DropLost([.. _owned.Where(p => !leases.Partitions.Contains(p))]);

        // Gained: start from the saved cursor; a partition kept keeps its in-memory cursor (never behind the saved one).
        for (var i = 0; i < leases.Partitions.Count; i++)
        {
            if (!_owned.Contains(leases.Partitions[i]))
            {
                _owned.Add(leases.Partitions[i]);
                _ownedCursors.Add(leases.Cursors[i]);
                changed = true;
            }
        }

        // Above the fair share (a worker joined): save and give back the highest partitions.
        if (_owned.Count > leases.FairShare)
        {
            var extra = new List<int>();
            var extraCursors = new List<long>();
            while (_owned.Count > leases.FairShare)
            {
                var index = _owned.IndexOf(_owned.Max());
                extra.Add(_owned[index]);
                extraCursors.Add(_ownedCursors[index]);
                _owned.RemoveAt(index);
                _ownedCursors.RemoveAt(index);
            }

            await log.SavePartitionCursorsAsync(Name, worker, extra, extraCursors, cancellationToken).ConfigureAwait(false);
            await log.ReleasePartitionsAsync(Name, worker, extra, cancellationToken).ConfigureAwait(false);
            changed = true;
        }

        if (changed)
        {
            SortOwned();
            var held = string.Join(",", _owned);
            SyncLog.PartitionsChanged(_logger, Name, worker, held, log.PartitionCount, leases.LiveWorkers, leases.FairShare);
            _events.Publish(new SyncEvent(SyncEventKind.PartitionsChanged, Name, 0, 0, _owned.Count, null, $"worker {worker} holds partitions [{held}] of {log.PartitionCount}; {leases.LiveWorkers} worker(s) alive", 0, _time.GetUtcNow()));
        }

        await RefreshStoreCursorAsync(log, cancellationToken).ConfigureAwait(false);
    }

    private async Task PartitionStepAsync(IPartitionedChangeLog log, CancellationToken cancellationToken)
    {
        var routesVersion = Interlocked.Read(ref _routesVersion);
        var routes = Volatile.Read(ref _routes);
        RoutesObserved.Advance(routesVersion);
        if (!_released)
        {
            await Wake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            return;
        }

        var skip = Volatile.Read(ref _skipTo);
        if (skip > _savedCursor)
        {
            await log.AdvanceAllPartitionsAsync(Name, skip, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < _ownedCursors.Count; i++)
            {
                _ownedCursors[i] = Math.Max(_ownedCursors[i], skip);
            }

            _savedCursor = skip;
            SyncLog.CursorSkipped(_logger, Name, skip);
            await RefreshStoreCursorAsync(log, cancellationToken).ConfigureAwait(false);
        }

        if (_owned.Count == 0)
        {
            // Nothing held (more workers than partitions, or all taken): look again when the leases are renewed.
            await Wake.WaitAsync(_options.PartitionLeaseDuration / 3, cancellationToken).ConfigureAwait(false);
            await RefreshStoreCursorAsync(log, cancellationToken).ConfigureAwait(false);
            return;
        }

        _records.Clear();
        LogReadResult read;
        try
        {
            read = await log.ReadCommittedAsync(_owned, _ownedCursors, _options.DispatchBatchSize, _records, cancellationToken).ConfigureAwait(false);
            Faulted = false;
        }
        catch (ChangeLogCorruptedException ex)
        {
            await ReportCorruptionAsync(ex, Cursor.Value, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (read.ReadThrough > Volatile.Read(ref _observedHead))
        {
            Volatile.Write(ref _observedHead, read.ReadThrough);
        }

        var advanced = false;
        for (var i = 0; i < _ownedCursors.Count; i++)
        {
            advanced |= read.ReadThrough > _ownedCursors[i];
        }

        if (_records.Count == 0 && !advanced)
        {
            // Caught up: save, learn how far the other workers are, and wait for a wake-up or the next poll.
            Volatile.Write(ref _lagSinceMs, 0);
            await SavePartitionCursorsAsync(log, force: true, cancellationToken).ConfigureAwait(false);
            await RefreshStoreCursorAsync(log, cancellationToken).ConfigureAwait(false);
            await Wake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            return;
        }

        await ProcessRecordsAsync(routes, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < _ownedCursors.Count; i++)
        {
            _ownedCursors[i] = Math.Max(_ownedCursors[i], read.ReadThrough);
        }

        _ownedDirty = true;
        await SavePartitionCursorsAsync(log, force: false, cancellationToken).ConfigureAwait(false);

        // While busy, still learn the other workers' progress once per poll interval, so waits here do not depend on
        // this worker running out of work.
        if (_time.GetElapsedTime(_lastRefresh) >= _options.PollInterval)
        {
            await RefreshStoreCursorAsync(log, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            AdvanceStoreCursor();
        }
        if (_records.Count < _options.DispatchBatchSize)
        {
            Volatile.Write(ref _lagSinceMs, 0);
        }
    }

    private async Task SavePartitionCursorsAsync(IPartitionedChangeLog log, bool force, CancellationToken cancellationToken)
    {
        if (!_ownedDirty || (!force && _time.GetElapsedTime(_lastCursorSave) < _options.CursorCheckpointInterval))
        {
            return;
        }

        var lost = await log.SavePartitionCursorsAsync(Name, _options.WorkerId, _owned, _ownedCursors, cancellationToken).ConfigureAwait(false);
        _lastCursorSave = _time.GetTimestamp();
        _ownedDirty = false;
        DropLost(lost);

        // The store's saved cursor: the lowest over every partition, this worker's just saved, the others' as last read.
        if (lost.Count == 0 && _allCursors.Length == log.PartitionCount)
        {
            var saved = long.MaxValue;
            for (var p = 0; p < _allCursors.Length; p++)
            {
                var index = _owned.IndexOf(p);
                saved = Math.Min(saved, index >= 0 ? _ownedCursors[index] : _allCursors[p]);
            }

            if (saved > SavedCursor.Value)
            {
                SavedCursor.Advance(saved);
            }
        }
    }

    /// <summary>Stops dispatching partitions whose lease another worker holds now; returns whether there were any.</summary>
    private bool DropLost(IReadOnlyList<int> lost)
    {
        if (lost.Count == 0)
        {
            return false;
        }

        foreach (var partition in lost)
        {
            var index = _owned.IndexOf(partition);
            if (index >= 0)
            {
                _owned.RemoveAt(index);
                _ownedCursors.RemoveAt(index);
            }
        }

        SyncLog.PartitionsLost(_logger, Name, _options.WorkerId, string.Join(",", lost));
        return true;
    }

    /// <summary>Reads every partition's saved cursor and publishes the store cursor (the lowest, with this worker's own in-memory ones).</summary>
    private async Task RefreshStoreCursorAsync(IPartitionedChangeLog log, CancellationToken cancellationToken)
    {
        // Holding every partition, this worker's own cursors are all there is to know (after the first read).
        if (_owned.Count < log.PartitionCount || _allCursors.Length != log.PartitionCount)
        {
            _allCursors = await log.GetPartitionCursorsAsync(Name, cancellationToken).ConfigureAwait(false);
        }

        _lastRefresh = _time.GetTimestamp();
        AdvanceStoreCursor();
    }

    private void AdvanceStoreCursor()
    {
        var all = _allCursors;
        for (var i = 0; i < _owned.Count; i++)
        {
            if (_owned[i] < all.Length)
            {
                all[_owned[i]] = Math.Max(all[_owned[i]], _ownedCursors[i]);
            }
        }

        var min = all.Length == 0 ? 0 : all.Min();
        if (min > Cursor.Value)
        {
            Cursor.Advance(min);
        }
    }

    private void SortOwned()
    {
        var pairs = _owned.Zip(_ownedCursors).OrderBy(p => p.First).ToArray();
        _owned.Clear();
        _ownedCursors.Clear();
        foreach (var (partition, cursor) in pairs)
        {
            _owned.Add(partition);
            _ownedCursors.Add(cursor);
        }
    }
}
