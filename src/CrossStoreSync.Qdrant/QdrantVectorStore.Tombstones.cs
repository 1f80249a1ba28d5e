using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant;

/// <summary>Tombstone purges (log retention).</summary>
public sealed partial class QdrantVectorStore
{
    // Qdrant's range conditions take a double; versions are 63-bit integers, which a double rounds to a multiple of up
    // to 2^10 here. Lowering the bound by more than that keeps a tombstone at the bound from ever matching (it costs
    // about a millisecond's worth of clock ticks of purging).
    private const long RangeRounding = 1 << 11;

    /// <inheritdoc />
    /// <remarks>
    /// Scrolls up to <paramref name="maxCount"/> tombstone points older than <paramref name="olderThan"/>, then deletes
    /// them with a filter that repeats the tombstone condition next to their ids, so a point overwritten by a newer
    /// upsert in between is kept. Returns the number of tombstones found.
    /// </remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        if (!_collections.TryGetValue(collection, out var state) || olderThan.Value <= RangeRounding)
        {
            return 0;
        }

        var below = olderThan.Value - RangeRounding;
        var page = await _calls.CallAsync(
            "purge tombstones", state.QdrantName, null, (state.QdrantName, Filter: SyncFilters.TombstonesBelow(below), Limit: (uint)maxCount),
            static (client, s, ct) => client.ScrollAsync(s.QdrantName, s.Filter, s.Limit, payloadSelector: false, vectorsSelector: false, cancellationToken: ct),
            cancellationToken).ConfigureAwait(false);
        var ids = page.Result.Select(p => p.Id).ToArray();
        if (ids.Length > 0)
        {
            await _calls.CallAsync(
                "purge tombstones", state.QdrantName, null, (state.QdrantName, Filter: SyncFilters.TombstonesBelow(below, ids)),
                static (client, s, ct) => client.DeleteAsync(s.QdrantName, s.Filter, wait: true, cancellationToken: ct),
                cancellationToken).ConfigureAwait(false);
        }

        return ids.Length;
    }
}
