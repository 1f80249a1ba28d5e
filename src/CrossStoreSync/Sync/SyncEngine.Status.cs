using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

internal sealed partial class SyncEngine
{
    public async ValueTask<SyncWaitOutcome> WaitForSyncAsync(SyncTicket ticket, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        (await WaitForSyncResultAsync(ticket, timeout, cancellationToken).ConfigureAwait(false)).Outcome;

    public async ValueTask<SyncWaitResult> WaitForSyncResultAsync(SyncTicket ticket, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        using var timeoutSource = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        IReadOnlyList<CompensationRecord> compensations = [];
        try
        {
            await WaitForDispatchersAsync(ticket.Lsns.Last, linked.Token).ConfigureAwait(false);
            if (_dispatchers.Length == 0)
            {
                return new SyncWaitResult(SyncWaitOutcome.Synced, []);
            }

            // Every dispatcher is past the ticket, so each of its entries is decided: count the committed ones; an
            // entry that is not committed was aborted by the source (after a pending write was retried and rejected).
            if (await CountAbortedAsync(ticket.Lsns, cancellationToken).ConfigureAwait(false) > 0)
            {
                return new SyncWaitResult(SyncWaitOutcome.Aborted, []);
            }

            if (Topology.Log is ICompensationLog log)
            {
                compensations = await WaitForCompensationsAsync(log, ticket.Lsns, linked.Token, list => compensations = list).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SyncWaitResult(SyncWaitOutcome.TimedOut, compensations);
        }

        var deadLetters = await Topology.Log.CountDeadLettersAsync(ticket.Lsns, cancellationToken).ConfigureAwait(false);
        foreach (var compensation in compensations)
        {
            // A replica may reject the compensating change too (then it is dead-lettered: compensations do not cascade).
            if (compensation.CompensationLsn is { } lsn && (lsn < ticket.Lsns.First || lsn > ticket.Lsns.Last))
            {
                deadLetters += await Topology.Log.CountDeadLettersAsync(new LsnRange(lsn, lsn), cancellationToken).ConfigureAwait(false);
            }
        }

        var outcome = deadLetters > 0 ? SyncWaitOutcome.DeadLettered
            : compensations.Count > 0 ? SyncWaitOutcome.Compensated
            : SyncWaitOutcome.Synced;
        return new SyncWaitResult(outcome, compensations);
    }

    private async Task WaitForDispatchersAsync(long lsn, CancellationToken cancellationToken)
    {
        foreach (var dispatcher in _dispatchers)
        {
            await dispatcher.Cursor.WaitForAsync(lsn, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until every compensation of the range is resolved and every compensating change written for it has been
    /// applied by every store, so <see cref="SyncWaitOutcome.Compensated"/> means "undone everywhere". Requests resolved by
    /// another process sharing the log are seen by reading the log again every poll interval.
    /// </summary>
    private async Task<IReadOnlyList<CompensationRecord>> WaitForCompensationsAsync(ICompensationLog log, LsnRange lsns, CancellationToken cancellationToken, Action<IReadOnlyList<CompensationRecord>> seen)
    {
        while (true)
        {
            var resolvedBefore = CompensationsResolved.Value;
            var records = await log.ListCompensationsAsync(new CompensationQuery((int)Math.Min(lsns.Count, 100_000)) { Lsns = lsns }, cancellationToken).ConfigureAwait(false);
            seen(records);
            if (!records.Any(r => r.State == CompensationState.Requested))
            {
                foreach (var record in records)
                {
                    if (record.CompensationLsn is { } lsn && record.State == CompensationState.Compensated)
                    {
                        await WaitForDispatchersAsync(lsn, cancellationToken).ConfigureAwait(false);
                    }
                }

                return records;
            }

            using var poll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            poll.CancelAfter(_options.PollInterval);
            try
            {
                await CompensationsResolved.WaitForAsync(resolvedBefore + 1, poll.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A poll interval passed: read the log again.
            }
        }
    }

    /// <summary>
    /// Counts the entries of a decided range that are not committed. Entries the retention task already removed were
    /// below every cursor; they are not counted (the log no longer knows whether they were aborted).
    /// </summary>
    private async ValueTask<long> CountAbortedAsync(LsnRange lsns, CancellationToken cancellationToken)
    {
        var log = Topology.Log;
        var committed = new List<LogRecord>();
        var read = await log.ReadCommittedAsync(lsns.First - 1, (int)Math.Min(int.MaxValue, lsns.Count), committed, cancellationToken).ConfigureAwait(false);
        var found = committed.Count(r => r.Lsn <= lsns.Last);
        if (read.ReadThrough < lsns.Last || found == lsns.Count || log is not IChangeLogRetention retention)
        {
            return read.ReadThrough < lsns.Last ? 0 : lsns.Count - found;
        }

        var truncatedThrough = await retention.GetTruncatedThroughAsync(cancellationToken).ConfigureAwait(false);
        var first = Math.Max(lsns.First, truncatedThrough + 1);
        return first > lsns.Last ? 0 : (lsns.Last - first + 1) - committed.Count(r => r.Lsn >= first && r.Lsn <= lsns.Last);
    }

    public async ValueTask<EntitySyncStatus> GetStatusAsync(EntityKey key, CancellationToken cancellationToken = default)
    {
        _validator.ValidateKey(key, nameof(key));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = Topology;
        var last = await topology.Log.GetLastEntryForKeyAsync(key, cancellationToken).ConfigureAwait(false);
        HlcTimestamp? version = last?.Change.Version;
        if (last is null)
        {
            // The key's entries were truncated (or never written): every store applied them; the source knows the version.
            var digests = await topology.Source.ReadDigestsAsync(key.Collection, [key.Id], cancellationToken).ConfigureAwait(false);
            version = digests.Count == 1 ? digests[0].Version : null;
        }

        var compensation = topology.Log is ICompensationLog compensations
            ? (await compensations.ListCompensationsAsync(new CompensationQuery(1) { Key = key, NewestFirst = true }, cancellationToken).ConfigureAwait(false)).FirstOrDefault()
            : null;
        var stores = new List<StoreEntityStatus>(_dispatchers.Length + 1);
        var sourceState = last?.State switch
        {
            LogEntryState.Pending => StoreSyncState.Pending,
            LogEntryState.Aborted => StoreSyncState.Aborted,
            _ => StoreSyncState.Synced,
        };
        stores.Add(new StoreEntityStatus(topology.Source.Name, sourceState, Head, null));
        foreach (var dispatcher in _dispatchers)
        {
            var cursor = dispatcher.Cursor.Value;
            if (dispatcher.NeedsRebuild)
            {
                stores.Add(new StoreEntityStatus(dispatcher.Name, StoreSyncState.NeedsRebuild, cursor, GetRebuildMark(dispatcher.Name)?.Reason));
            }
            else if (compensation is { State: CompensationState.Requested } && compensation.Store == dispatcher.Name)
            {
                // It rejected the key's write and holds the prior state; the compensating change is on its way.
                stores.Add(new StoreEntityStatus(dispatcher.Name, StoreSyncState.Compensating, cursor, compensation.Reason));
            }
            else if (last?.State == LogEntryState.Aborted)
            {
                stores.Add(new StoreEntityStatus(dispatcher.Name, StoreSyncState.Aborted, cursor, null));
            }
            else if (last is not null && cursor < last.Lsn)
            {
                stores.Add(new StoreEntityStatus(dispatcher.Name, StoreSyncState.Pending, cursor, null));
            }
            else
            {
                // A dead letter counts when it is for the key's last change: the last logged one, or, with the entries
                // truncated, the state the source holds (a newer change after it was applied, since it is below every
                // cursor and has no newer dead letter); with nothing in the source, only a delete can be the last change.
                var letter = await topology.Log.GetDeadLetterAsync(dispatcher.Name, key, cancellationToken).ConfigureAwait(false);
                var current = letter is not null && (last is not null
                    ? letter.Lsn >= last.Lsn
                    : version is { } held ? letter.Version >= held : letter.Kind == ChangeKind.Delete);
                stores.Add(current
                    ? new StoreEntityStatus(dispatcher.Name, StoreSyncState.DeadLettered, cursor, letter!.Reason)
                    : new StoreEntityStatus(dispatcher.Name, StoreSyncState.Synced, cursor, null));
            }
        }

        return new EntitySyncStatus(key, last?.Lsn, version, stores) { Compensation = compensation };
    }

    public async ValueTask<IReadOnlyList<StoreStatistics>> GetStatisticsAsync(CancellationToken cancellationToken = default)
    {
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = Topology;
        var result = new List<StoreStatistics>(_dispatchers.Length + 1)
        {
            new(topology.Source.Name, true, Head, 0, 0, 0, false),
        };
        foreach (var lag in GetLag())
        {
            var letters = await topology.Log.ListDeadLettersAsync(lag.Store, 10_000, cancellationToken).ConfigureAwait(false);
            var cursor = Array.Find(_dispatchers, d => d.Name == lag.Store)!.Cursor.Value;
            result.Add(new StoreStatistics(lag.Store, false, cursor, lag.Changes, lag.Seconds, letters.Count, lag.Faulted) { NeedsRebuild = lag.NeedsRebuild });
        }

        return result;
    }

    public IAsyncEnumerable<SyncEvent> SubscribeAsync(CancellationToken cancellationToken = default) => _events.Subscribe(cancellationToken);

    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(string? store = null, int maxCount = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return await Topology.Log.ListDeadLettersAsync(store, maxCount, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<int> ReplayDeadLettersAsync(string? store = null, CancellationToken cancellationToken = default)
    {
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = Topology;
        var letters = await topology.Log.ListDeadLettersAsync(store, 10_000, cancellationToken).ConfigureAwait(false);
        if (letters.Count == 0)
        {
            return 0;
        }

        // Re-project each key from the source's current state (not the old change), so a replay can never bring back
        // something newer writes replaced; appended as committed, it flows through the normal dispatchers.
        var changes = new List<EntityChange>(letters.Count);
        var seen = new HashSet<EntityKey>();
        foreach (var letter in letters)
        {
            if (!seen.Add(letter.Key))
            {
                continue;
            }

            var current = await topology.Source.ReadAsync(letter.Key, cancellationToken).ConfigureAwait(false);
            changes.Add(current is null
                ? EntityChange.Delete(letter.Key, _clock.Now())
                : EntityChange.Upsert(current.Entity, current.Version, current.ContentHash));
        }

        var range = await topology.Log.AppendAsync(changes, LogEntryState.Committed, cancellationToken).ConfigureAwait(false);
        _metrics.Appended.Add(changes.Count);
        foreach (var letter in letters)
        {
            await topology.Log.RemoveDeadLetterAsync(letter.Id, cancellationToken).ConfigureAwait(false);
        }

        AdvanceHead(range.Last);
        WakeDispatchers();
        foreach (var group in letters.GroupBy(l => l.Store, StringComparer.Ordinal))
        {
            SyncLog.DeadLettersReplayed(_logger, group.Count(), group.Key);
        }

        return letters.Count;
    }
}
