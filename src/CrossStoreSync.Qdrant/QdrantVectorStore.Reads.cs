using CrossStoreSync.Errors;

using System.Globalization;
using System.Runtime.CompilerServices;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant;

/// <summary>Digest reads, counts, origin removal and search.</summary>
public sealed partial class QdrantVectorStore
{
    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        EntityKey.ValidateCollection(collection, nameof(collection));
        var result = new List<EntityDigest>(ids.Count);
        if (!_collections.TryGetValue(collection, out var state))
        {
            return result;
        }

        var selectors = Selectors(state.VectorName);
        for (var start = 0; start < ids.Count; start += _options.BatchSize)
        {
            var end = Math.Min(ids.Count, start + _options.BatchSize);
            var pointIds = new List<PointId>(end - start);
            for (var i = start; i < end; i++)
            {
                pointIds.Add(PointIds.ToPointId(ids[i]));
            }

            var points = await _calls.CallAsync(
                "read digests", state.QdrantName, null, (state.QdrantName, pointIds, selectors),
                static (client, s, ct) => client.RetrieveAsync(s.QdrantName, s.pointIds, s.selectors.Payload, s.selectors.Vectors, cancellationToken: ct),
                cancellationToken).ConfigureAwait(false);
            foreach (var point in points)
            {
                var record = QdrantRecord.Parse(point, state.VectorName);
                if (record.IsLive)
                {
                    result.Add(record.ToDigest(collection, state.Distance));
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Scrolls the live points of a collection whose bucket is in <paramref name="range"/>, one page of
    /// <see cref="QdrantVectorStoreOptions.BatchSize"/> at a time (ordered by point id, resumed from the page's
    /// next offset), so memory stays constant.
    /// </summary>
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        if (!_collections.TryGetValue(collection, out var state))
        {
            yield break;
        }

        var filter = SyncFilters.LiveInBuckets(range);
        var selectors = Selectors(state.VectorName);
        PointId? offset = null;
        do
        {
            var page = await _calls.CallAsync(
                "scan digests", state.QdrantName, null, (state.QdrantName, filter, Limit: (uint)_options.BatchSize, offset, selectors),
                static (client, s, ct) => client.ScrollAsync(s.QdrantName, s.filter, s.Limit, s.offset, s.selectors.Payload, s.selectors.Vectors, cancellationToken: ct),
                cancellationToken).ConfigureAwait(false);
            var digests = new List<EntityDigest>(page.Result.Count);
            foreach (var point in page.Result)
            {
                var record = QdrantRecord.Parse(point, state.VectorName);
                if (record.IsLive && range.Contains(record.Bucket))
                {
                    digests.Add(record.ToDigest(collection, state.Distance));
                }
            }

            offset = page.NextPageOffset;
            foreach (var digest in digests)
            {
                yield return digest;
            }
        }
        while (offset is not null);
    }

    /// <inheritdoc />
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        if (!_collections.TryGetValue(collection, out var state))
        {
            return 0;
        }

        return await CountAsync(state, SyncFilters.Live(), "count", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Counts, then deletes (no tombstone) the points whose <c>_sync.origin</c> is <paramref name="origin"/>. A point
    /// overwritten between the count and the delete no longer carries the tag and is kept; the count then includes it.
    /// </summary>
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        if (!_collections.TryGetValue(collection, out var state))
        {
            return 0;
        }

        var filter = SyncFilters.Origin(origin);
        var count = await CountAsync(state, filter, "remove by origin", cancellationToken).ConfigureAwait(false);
        if (count > 0)
        {
            await _calls.CallAsync(
                "remove by origin", state.QdrantName, null, (state.QdrantName, filter),
                static (client, s, ct) => client.DeleteAsync(s.QdrantName, s.filter, wait: true, cancellationToken: ct),
                cancellationToken).ConfigureAwait(false);
        }

        return count;
    }

    private async Task<long> CountAsync(CollectionState state, Filter filter, string operation, CancellationToken cancellationToken)
    {
        var count = await _calls.CallAsync(
            operation, state.QdrantName, null, (state.QdrantName, filter),
            static (client, s, ct) => client.CountAsync(s.QdrantName, s.filter, exact: true, cancellationToken: ct),
            cancellationToken).ConfigureAwait(false);
        return (long)count;
    }

    /// <summary>Searches with Qdrant's universal query (nearest to <paramref name="query"/>), over live points only.</summary>
    /// <exception cref="ArgumentException">The query's dimension differs from the collection's, or the collection has no vectors.</exception>
    /// <exception cref="QdrantException">Qdrant failed.</exception>
    public async ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (!_collections.TryGetValue(collection, out var state) || state.Dimension != query.Length)
        {
            throw new ArgumentException($"Query has dimension {query.Length}; collection {SafeText.Quote(collection)} in store {SafeText.Quote(Name)} expects {(state is null ? "no vectors (not configured)" : state.Dimension.ToString(CultureInfo.InvariantCulture))}.", nameof(query));
        }

        var nearest = new Query { Nearest = new VectorInput { Dense = new DenseVector() } };
        foreach (var x in query.Span)
        {
            nearest.Nearest.Dense.Data.Add(x);
        }

        var points = await _calls.CallAsync(
            "search", state.QdrantName, null, (state.QdrantName, nearest, state.VectorName, Limit: (ulong)limit),
            static (client, s, ct) => client.QueryAsync(
                s.QdrantName, s.nearest, usingVector: s.VectorName, filter: SyncFilters.Live(), limit: s.Limit,
                payloadSelector: KeyOnly, vectorsSelector: NoVectors, cancellationToken: ct),
            cancellationToken).ConfigureAwait(false);
        var matches = new List<VectorMatch>(points.Count);
        foreach (var point in points)
        {
            if (point.Payload.TryGetValue(SyncPayload.Root, out var sync) && sync.KindCase == Value.KindOneofCase.StructValue
                && sync.StructValue.Fields.TryGetValue(SyncPayload.Key, out var key) && key.KindCase == Value.KindOneofCase.StringValue)
            {
                matches.Add(new VectorMatch(new EntityKey(collection, key.StringValue), point.Score));
            }
        }

        return matches;
    }

    private static readonly WithPayloadSelector KeyOnly = new() { Include = new PayloadIncludeSelector { Fields = { SyncPayload.KeyPath } } };

    /// <summary>What digest reads ask for: the <c>_sync</c> payload and the collection's named vector.</summary>
    private static (WithPayloadSelector Payload, WithVectorsSelector Vectors) Selectors(string vectorName) =>
        (new WithPayloadSelector { Include = new PayloadIncludeSelector { Fields = { SyncPayload.Root } } },
         new WithVectorsSelector { Include = new VectorsSelector { Names = { vectorName } } });
}
