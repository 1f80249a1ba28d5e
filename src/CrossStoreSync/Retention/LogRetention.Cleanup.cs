using System.Collections.Concurrent;
using CrossStoreSync.Log;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Retention;

/// <summary>Tombstones, dead letters and automatic rebuilds.</summary>
internal sealed partial class LogRetention
{
    private readonly ConcurrentDictionary<string, Task> _rebuilds = new(StringComparer.Ordinal);

    private IEnumerable<Task> RebuildTasks() => _rebuilds.Values;

    /// <summary>
    /// Purges, in every store, the tombstones older than both <see cref="Configuration.LogRetentionOptions.TombstoneRetention"/>
    /// and every change some store still has to apply (the oldest version logged after the low-water mark). A delete
    /// logged after the low-water mark therefore keeps its tombstone everywhere, and no change still in flight is older
    /// than a purged tombstone — so none can bring its entity back.
    /// </summary>
    private async Task<long> PurgeTombstonesAsync(IChangeLogRetention log, long lowWaterMark, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var cutoffMs = (now - _retention.TombstoneRetention).ToUnixTimeMilliseconds();
        if (cutoffMs <= 0)
        {
            return 0;
        }

        var horizon = new HlcTimestamp(Math.Min(cutoffMs, HlcTimestamp.MaxWallTimeMs), 0, 0);
        if (await log.GetOldestVersionAfterAsync(lowWaterMark, cancellationToken).ConfigureAwait(false) is { } oldest && oldest < horizon)
        {
            horizon = oldest;
        }

        long total = 0;
        foreach (var store in _engine.Topology.Stores)
        {
            if (store is not ITombstoneStore tombstones)
            {
                WarnUnsupported(store);
                continue;
            }

            foreach (var collection in _options.Collections)
            {
                total += await PurgeCollectionAsync(store, tombstones, collection.Name, horizon, cancellationToken).ConfigureAwait(false);
            }
        }

        return total;
    }

    private async Task<long> PurgeCollectionAsync(ISyncStore store, ITombstoneStore tombstones, string collection, HlcTimestamp horizon, CancellationToken cancellationToken)
    {
        long total = 0;
        var tag = new KeyValuePair<string, object?>("store", store.Name);
        while (true)
        {
            int purged;
            try
            {
                purged = await tombstones.PurgeTombstonesAsync(collection, horizon, _retention.TruncationBatchSize, cancellationToken).ConfigureAwait(false);
            }
            catch (NotSupportedException)
            {
                // A decorator around a store that cannot purge.
                WarnUnsupported(store);
                return total;
            }

            total += purged;
            _metrics.TombstonesPurged.Add(purged, tag);
            SyncLog.TombstoneBatch(_logger, purged, store.Name, collection);
            if (purged < _retention.TruncationBatchSize)
            {
                break;
            }
        }

        if (total > 0)
        {
            SyncLog.TombstonesPurged(_logger, (int)Math.Min(int.MaxValue, total), horizon.ToString(), store.Name, collection);
            _engine.Events.Publish(new SyncEvent(SyncEventKind.TombstonesPurged, store.Name, 0, 0, (int)Math.Min(int.MaxValue, total), null, collection, 0, _time.GetUtcNow()));
        }

        return total;
    }

    private void WarnUnsupported(ISyncStore store)
    {
        if (_warnedStores.Add(store.Name))
        {
            SyncLog.TombstonePurgeUnsupported(_logger, store.Name, store.GetType().Name);
        }
    }

    /// <summary>Counts the dead letters per store, removes those past their retention, and counts again.</summary>
    private async Task<(long Removed, IReadOnlyDictionary<string, long> Stored)> ExpireDeadLettersAsync(IChangeLogRetention log, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stored = await log.CountDeadLettersByStoreAsync(cancellationToken).ConfigureAwait(false);
        if (!_retention.Enabled || stored.Count == 0)
        {
            return (0, stored);
        }

        var before = now - _retention.DeadLetterRetention;
        var removedByStore = new Dictionary<string, int>(StringComparer.Ordinal);
        while (true)
        {
            var removed = await log.RemoveDeadLettersAsync(before, _retention.TruncationBatchSize, cancellationToken).ConfigureAwait(false);
            var count = 0;
            foreach (var (store, n) in removed)
            {
                removedByStore[store] = removedByStore.GetValueOrDefault(store) + n;
                count += n;
            }

            if (count < _retention.TruncationBatchSize)
            {
                break;
            }
        }

        if (removedByStore.Count == 0)
        {
            return (0, stored);
        }

        long total = 0;
        foreach (var (store, count) in removedByStore)
        {
            total += count;
            _metrics.DeadLettersExpired.Add(count, new KeyValuePair<string, object?>("store", store));
            SyncLog.DeadLettersExpired(_logger, count, store, _retention.DeadLetterRetention);
            _engine.Events.Publish(new SyncEvent(SyncEventKind.DeadLettersExpired, store, 0, 0, count, null, null, 0, _time.GetUtcNow()));
        }

        return (total, await log.CountDeadLettersByStoreAsync(cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Removes the compensation records no one needs: armed ones of writes every store has applied (at or below the
    /// low-water mark, so no replica can reject them any more) and resolved ones older than
    /// <see cref="Configuration.LogRetentionOptions.DeadLetterRetention"/>, which status and waits report until then.
    /// </summary>
    private async Task PruneCompensationsAsync(ICompensationLog log, long lowWaterMark, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var before = now - _retention.DeadLetterRetention;
        int removed;
        do
        {
            removed = await log.RemoveCompensationsAsync(lowWaterMark, before, _retention.TruncationBatchSize, cancellationToken).ConfigureAwait(false);
        }
        while (removed >= _retention.TruncationBatchSize);
    }

    /// <summary>Starts a rebuild for every replica marked as needing one that is not being rebuilt already.</summary>
    private void StartRebuilds()
    {
        foreach (var dispatcher in _engine.Dispatchers)
        {
            if (!dispatcher.NeedsRebuild || _engine.GetRebuildMark(dispatcher.Name) is not { } mark)
            {
                continue;
            }

            if (_rebuilds.TryGetValue(dispatcher.Name, out var running) && !running.IsCompleted)
            {
                continue;
            }

            _rebuilds[dispatcher.Name] = Task.Run(() => RebuildAsync(mark, _stopping.Token), CancellationToken.None);
        }
    }

    private async Task RebuildAsync(RebuildMark mark, CancellationToken cancellationToken)
    {
        var id = mark.MigrationId();
        SyncLog.RebuildStarted(_logger, mark.Store, id);
        try
        {
            // A backfill of every collection into a store that needs a rebuild: its cursor moves to the backfill's start,
            // then the migration checks the store, repairs what the log could no longer tell it (deletes) and checks again.
            var migrations = _services.GetRequiredService<IMigrationManager>();
            await migrations.RunAsync(new MigrationRequest { Id = id, Target = mark.Store }, null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            SyncLog.RebuildFailed(_logger, mark.Store, id, ex);
        }
    }
}
