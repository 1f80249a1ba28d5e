using System.Collections.Concurrent;
using CrossStoreSync.Configuration;
using CrossStoreSync.Log;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrossStoreSync.Sync;

/// <summary>
/// Resolves pending log entries whose writer is gone (a crash between the log append and the source write, or a
/// source outage): re-applies each to the source, which is idempotent, then commits it, or aborts it when the source
/// rejects it. Replicas never read past a pending entry, so until this runs they wait instead of diverging.
/// </summary>
internal sealed class PendingResolver(StoreTopology topology, ResiliencePipeline sourcePipeline, SyncMetrics metrics, ILogger logger)
{
    /// <summary>Appends whose writer is still running in this process, keyed by first LSN.</summary>
    public ConcurrentDictionary<long, LsnRange> InFlight { get; } = new();

    /// <summary>Resolves what it can; returns true when entries were resolved.</summary>
    public async Task<bool> ResolveAsync(CancellationToken cancellationToken)
    {
        var pending = await topology.Log.ReadPendingAsync(cancellationToken).ConfigureAwait(false);
        int committed = 0, aborted = 0;
        var single = new Model.EntityChange[1];
        foreach (var record in pending)
        {
            if (IsInFlight(record.Lsn))
            {
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
                    break;
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

        if (committed + aborted > 0)
        {
            metrics.PendingResolved.Add(committed + aborted);
            SyncLog.PendingResolved(logger, committed, aborted);
        }

        return committed + aborted > 0;
    }

    private bool IsInFlight(long lsn)
    {
        foreach (var range in InFlight.Values)
        {
            if (lsn >= range.First && lsn <= range.Last)
            {
                return true;
            }
        }

        return false;
    }
}
