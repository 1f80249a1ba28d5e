using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Log;

/// <summary>Reads the overview from the engine's change log (see <see cref="IChangeLogInspector"/>).</summary>
internal sealed class ChangeLogInspector(SyncEngine engine, IOptions<CrossStoreSyncOptions> options, TimeProvider time) : IChangeLogInspector
{
    private const int DeadLetterCountLimit = 10_000;

    public async Task<ChangeLogOverview> GetOverviewAsync(CancellationToken cancellationToken = default)
    {
        await engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = engine.Topology;
        var log = topology.Log;
        var partitioned = log as IPartitionedChangeLog;
        var head = await log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false);
        var pending = await log.ReadPendingAsync(cancellationToken).ConfigureAwait(false);
        var oldest = await OldestAsync(log, pending, cancellationToken).ConfigureAwait(false);

        var stores = new List<StoreCursorStatus>(topology.Replicas.Count + 1)
        {
            new(topology.Source.Name, true, head, 0, null, 0, null, false, null),
        };
        foreach (var replica in topology.Replicas)
        {
            stores.Add(await ReadStoreAsync(log, partitioned, replica.Name, head, cancellationToken).ConfigureAwait(false));
        }

        var retained = oldest is { } o && head >= o ? head - o + 1 : 0;
        return new ChangeLogOverview(topology.Source.Name, head, oldest, retained, pending.Count, partitioned?.PartitionCount, stores, time.GetUtcNow());
    }

    private async Task<StoreCursorStatus> ReadStoreAsync(IChangeLog log, IPartitionedChangeLog? partitioned, string store, long head, CancellationToken cancellationToken)
    {
        var cursor = await log.GetCursorAsync(store, cancellationToken).ConfigureAwait(false);
        long[]? partitionCursors = null;
        var next = new List<LogRecord>(1);
        string? fault = null;
        try
        {
            if (partitioned is not null)
            {
                // Each partition after its own cursor: the lowest cursor alone would count entries other partitions applied.
                partitionCursors = await partitioned.GetPartitionCursorsAsync(store, cancellationToken).ConfigureAwait(false);
                var all = Enumerable.Range(0, partitionCursors.Length).ToArray();
                await partitioned.ReadCommittedAsync(all, partitionCursors, 1, next, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await log.ReadCommittedAsync(cursor, 1, next, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (ChangeLogCorruptedException ex)
        {
            fault = ex.Message;
        }

        var letters = await log.ListDeadLettersAsync(store, DeadLetterCountLimit, cancellationToken).ConfigureAwait(false);
        DateTimeOffset? oldestUnapplied = next.Count == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(next[0].Change.Version.WallTimeMs);
        var awaiting = cursor == 0 && options.Value.ReplicasAwaitingBackfill.Contains(store);
        return new StoreCursorStatus(store, false, cursor, Math.Max(0, head - cursor), oldestUnapplied, letters.Count, fault, awaiting, partitionCursors);
    }

    private static async Task<long?> OldestAsync(IChangeLog log, IReadOnlyList<LogRecord> pending, CancellationToken cancellationToken)
    {
        long? oldest = pending.Count == 0 ? null : pending.Min(p => p.Lsn);
        var first = new List<LogRecord>(1);
        try
        {
            await log.ReadCommittedAsync(0, 1, first, cancellationToken).ConfigureAwait(false);
        }
        catch (ChangeLogCorruptedException ex)
        {
            // The first record itself is unreadable: it is still retained.
            return ex.Lsn;
        }

        if (first.Count > 0 && (oldest is null || first[0].Lsn < oldest))
        {
            oldest = first[0].Lsn;
        }

        return oldest;
    }
}
