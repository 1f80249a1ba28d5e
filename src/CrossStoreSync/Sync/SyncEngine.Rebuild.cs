using CrossStoreSync.Log;
using CrossStoreSync.Migration;
using CrossStoreSync.Retention;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

/// <summary>Replicas the log no longer serves: marked durably, stopped, and released again once rebuilt.</summary>
internal sealed partial class SyncEngine
{
    private readonly Dictionary<string, RebuildMark> _rebuildMarks = new(StringComparer.Ordinal);
    private readonly Lock _rebuildGate = new();

    /// <summary>The rebuild mark of a store, or null.</summary>
    internal RebuildMark? GetRebuildMark(string store)
    {
        lock (_rebuildGate)
        {
            return _rebuildMarks.GetValueOrDefault(store);
        }
    }

    /// <summary>
    /// Marks a replica as needing a rebuild: saved first (so a restart keeps it, and other processes sharing the log learn
    /// it), then its dispatcher stops. Called before the log is truncated past its cursor.
    /// </summary>
    internal async Task MarkNeedsRebuildAsync(string store, string reason, long cursor, long head, CancellationToken cancellationToken)
    {
        var dispatcher = _dispatchers.First(d => d.Name == store);
        var mark = new RebuildMark { Store = store, Reason = reason, Cursor = cursor, Head = head, MarkedAt = _time.GetUtcNow() };
        await Topology.Log.SetCheckpointAsync(RebuildMark.Name(store), MigrationJson.Write(mark), cancellationToken).ConfigureAwait(false);
        lock (_rebuildGate)
        {
            _rebuildMarks[store] = mark;
        }

        dispatcher.MarkNeedsRebuild();
        SyncLog.StoreCutOff(_logger, store, head - cursor, cursor, head);
        _events.Publish(new SyncEvent(SyncEventKind.NeedsRebuild, store, cursor, head, (int)Math.Min(int.MaxValue, head - cursor), null, reason, 0, _time.GetUtcNow()));
    }

    /// <summary>Ends a rebuild: the mark is removed and the dispatcher runs again from the cursor the migration set.</summary>
    internal async Task ClearNeedsRebuildAsync(string store, string migrationId, CancellationToken cancellationToken)
    {
        var dispatcher = _dispatchers.First(d => d.Name == store);
        await Topology.Log.SetCheckpointAsync(RebuildMark.Name(store), null, cancellationToken).ConfigureAwait(false);
        lock (_rebuildGate)
        {
            _rebuildMarks.Remove(store);
        }

        dispatcher.ClearNeedsRebuild();
        SyncLog.StoreRebuilt(_logger, store, migrationId, dispatcher.Cursor.Value);
        _events.Publish(new SyncEvent(SyncEventKind.Rebuilt, store, dispatcher.Cursor.Value, dispatcher.Cursor.Value, 0, null, $"rebuilt by migration {migrationId}", 0, _time.GetUtcNow()));
    }

    /// <summary>
    /// Applies the saved marks to this process's dispatchers: at start-up, and every retention round for a log shared by
    /// several processes (another process may have cut a store off or finished its rebuild).
    /// </summary>
    internal async Task SyncRebuildMarksAsync(IChangeLog log, CancellationToken cancellationToken)
    {
        var saved = new Dictionary<string, RebuildMark>(StringComparer.Ordinal);
        foreach (var name in await log.ListCheckpointsAsync(RebuildMark.Prefix, cancellationToken).ConfigureAwait(false))
        {
            if (await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false) is { } json)
            {
                var mark = MigrationJson.ReadRebuildMark(json, name);
                saved[mark.Store] = mark;
            }
        }

        foreach (var dispatcher in _dispatchers)
        {
            if (saved.TryGetValue(dispatcher.Name, out var mark))
            {
                lock (_rebuildGate)
                {
                    _rebuildMarks[dispatcher.Name] = mark;
                }

                if (!dispatcher.NeedsRebuild)
                {
                    dispatcher.MarkNeedsRebuild();
                }
            }
            else if (dispatcher.NeedsRebuild)
            {
                // Rebuilt by another process, whose migration also moved this store's cursors past the gap.
                lock (_rebuildGate)
                {
                    _rebuildMarks.Remove(dispatcher.Name);
                }

                dispatcher.ClearNeedsRebuild();
            }
        }
    }

    /// <summary>
    /// At start-up: restores saved marks, then marks any replica whose cursor is below what the log has already removed —
    /// one that was left out of the configuration while the log was truncated, or a new replica added to a truncated log
    /// without <see cref="Configuration.CrossStoreSyncOptions.ReplicasAwaitingBackfill"/>. Replaying would silently skip
    /// the removed changes.
    /// </summary>
    private async Task LoadRebuildMarksAsync(IChangeLog log, CancellationToken cancellationToken)
    {
        await SyncRebuildMarksAsync(log, cancellationToken).ConfigureAwait(false);
        if (log is not IChangeLogRetention retention)
        {
            return;
        }

        var truncatedThrough = await retention.GetTruncatedThroughAsync(cancellationToken).ConfigureAwait(false);
        var head = await log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false);
        foreach (var dispatcher in _dispatchers)
        {
            var cursor = dispatcher.Cursor.Value;
            if (!dispatcher.NeedsRebuild && !dispatcher.AwaitingBackfill && cursor < truncatedThrough)
            {
                await MarkNeedsRebuildAsync(
                    dispatcher.Name,
                    $"its cursor {cursor} is below what the change log has already removed (through LSN {truncatedThrough})",
                    cursor,
                    head,
                    cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
