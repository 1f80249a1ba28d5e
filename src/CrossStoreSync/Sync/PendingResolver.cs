using System.Collections.Concurrent;
using CrossStoreSync.Log;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrossStoreSync.Sync;

/// <summary>
/// Resolves pending log entries whose writer is gone (a crash between the log append and the source write, or a
/// source outage the writer gave up on): re-applies each to the source, which is idempotent, then commits it, or
/// aborts it when the source rejects it. Replicas never read past a pending entry, so until this runs they wait
/// instead of diverging. Entries whose writer is still running in this process are left to that writer.
/// </summary>
internal sealed class PendingResolver(StoreTopology topology, ResiliencePipeline sourcePipeline, SyncMetrics metrics, ILogger logger)
{
    /// <summary>Pending entries at or below this LSN were left by an earlier process.</summary>
    public long StartupHead { get; set; }

    /// <summary>Appends of this process whose writer gave up on an unavailable source, keyed by first LSN.</summary>
    public ConcurrentDictionary<long, LsnRange> HandedOver { get; } = new();

    /// <summary>Resolves what it can; returns true when entries were resolved.</summary>
    public async Task<bool> ResolveAsync(CancellationToken cancellationToken)
    {
        // Snapshot the hand-overs before reading: every still-pending entry of a snapshotted range is then in the read,
        // so pruning below cannot drop a range registered while this round runs.
        var handedOver = HandedOver.Values.ToArray();
        var pending = await topology.Log.ReadPendingAsync(cancellationToken).ConfigureAwait(false);
        int committed = 0, aborted = 0;
        var stillPending = new HashSet<long>();
        var single = new Model.EntityChange[1];
        var deferred = false;
        foreach (var record in pending)
        {
            if (deferred || !IsOrphaned(record.Lsn, handedOver))
            {
                stillPending.Add(record.Lsn);
                continue;
            }

            single[0] = record.Change;
            var state = LogEntryState.Committed;
            try
            {
                await sourcePipeline.ExecuteAsync(static (s, ct) => s.Store.ApplyAsync(s.Changes, ct), (Store: topology.Source, Changes: single), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, cancellationToken))
            {
                if (TransientErrors.IsTransient(ex, cancellationToken))
                {
                    SyncLog.PendingResolutionDeferred(logger, ex);
                    deferred = true;
                    stillPending.Add(record.Lsn);
                    continue;
                }

                state = LogEntryState.Aborted;
            }

            await topology.Log.SetStateAsync(new LsnRange(record.Lsn, record.Lsn), state, cancellationToken).ConfigureAwait(false);
            if (state == LogEntryState.Committed)
            {
                committed++;
            }
            else
            {
                aborted++;
            }
        }

        // Forget handed-over appends once none of their entries is pending any more.
        foreach (var range in handedOver)
        {
            if (!stillPending.Any(lsn => lsn >= range.First && lsn <= range.Last))
            {
                HandedOver.TryRemove(range.First, out _);
            }
        }

        if (committed + aborted > 0)
        {
            metrics.PendingResolved.Add(committed + aborted);
            SyncLog.PendingResolved(logger, committed, aborted);
        }

        return committed + aborted > 0;
    }

    private bool IsOrphaned(long lsn, LsnRange[] handedOver)
    {
        if (lsn <= StartupHead)
        {
            return true;
        }

        foreach (var range in handedOver)
        {
            if (lsn >= range.First && lsn <= range.Last)
            {
                return true;
            }
        }

        return false;
    }
}
