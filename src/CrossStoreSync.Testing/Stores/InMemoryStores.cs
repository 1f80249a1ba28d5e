using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Testing.Stores;

/// <summary>An in-memory document store (for tests). Thread-safe.</summary>
/// <param name="name">The store's name. <value>Default <c>documents</c>.</value></param>
public sealed class InMemoryDocumentStore(string name = "documents") : InMemorySyncStore(name, StoreKind.Document), IDocumentStore
{
    /// <inheritdoc />
    public ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken)
    {
        lock (Gate)
        {
            return ValueTask.FromResult(Records.TryGetValue(key, out var stored) && stored.Entity is not null
                ? new VersionedEntity(stored.Entity, stored.Version, stored.Hash)
                : null);
        }
    }

    private readonly Dictionary<string, (long Generation, string[] Ids)> _sortedIds = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        lock (Gate)
        {
            // Pages come from a sorted id list rebuilt only when keys were added or erased, so paging through a
            // collection costs one sort, not one per page.
            if (!_sortedIds.TryGetValue(collection, out var sorted) || sorted.Generation != Generation)
            {
                var ids = Records.Keys.Where(k => k.Collection == collection).Select(k => k.Id).ToArray();
                Array.Sort(ids, StringComparer.Ordinal);
                _sortedIds[collection] = sorted = (Generation, ids);
            }

            var start = 0;
            if (afterId is not null)
            {
                var index = Array.BinarySearch(sorted.Ids, afterId, StringComparer.Ordinal);
                start = index >= 0 ? index + 1 : ~index;
            }

            var page = new List<VersionedEntity>(Math.Min(limit, 1024));
            for (var i = start; i < sorted.Ids.Length && page.Count < limit; i++)
            {
                if (Records.TryGetValue(EntityKey.Trusted(collection, sorted.Ids[i]), out var stored) && stored.Entity is not null)
                {
                    page.Add(new VersionedEntity(stored.Entity, stored.Version, stored.Hash));
                }
            }

            return ValueTask.FromResult<IReadOnlyList<VersionedEntity>>(page);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        cancellationToken.ThrowIfCancellationRequested();
        lock (Gate)
        {
            var page = CollectBucketPage(collection, range, afterId, limit);
            return ValueTask.FromResult<IReadOnlyList<VersionedEntity>>(page.ConvertAll(p => new VersionedEntity(p.Value.Entity!, p.Value.Version, p.Value.Hash)));
        }
    }
}

/// <summary>An in-memory vector store with exact search (for tests). Thread-safe.</summary>
/// <param name="name">The store's name. <value>Default <c>vectors</c>.</value></param>
public sealed class InMemoryVectorStore(string name = "vectors") : InMemorySyncStore(name, StoreKind.Vector), IVectorStore
{
    /// <inheritdoc />
    protected override bool IsLive(in Stored stored) => stored.Entity is { HasVector: true };

    /// <inheritdoc />
    protected override void Validate(EntityChange change)
    {
        base.Validate(change);
        if (change.Entity is { HasVector: true } entity)
        {
            if (!TryGetCollection(change.Key.Collection, out var collection) || collection.VectorDimension is not { } dimension)
            {
                throw new SyncStoreException($"Collection {SafeText.Quote(change.Key.Collection)} has no vector dimension configured in store {SafeText.Quote(Name)}.", false, Name, change.Key, "apply");
            }

            if (entity.Vector.Length != dimension)
            {
                throw new SyncStoreException($"Vector of {SafeText.Quote(change.Key)} has dimension {entity.Vector.Length}; collection {SafeText.Quote(collection.Name)} in store {SafeText.Quote(Name)} expects {dimension}.", false, Name, change.Key, "apply");
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (!TryGetCollection(collection, out var definition) || definition.VectorDimension != query.Length)
        {
            throw new ArgumentException($"Query has dimension {query.Length}; collection {SafeText.Quote(collection)} expects {definition?.VectorDimension?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no vectors"}.", nameof(query));
        }

        List<VectorMatch> matches = [];
        lock (Gate)
        {
            foreach (var (key, stored) in Records)
            {
                if (key.Collection == collection && IsLive(stored))
                {
                    matches.Add(new VectorMatch(key, VectorMath.Score(query.Span, stored.Entity!.Vector.Span, definition.Distance)));
                }
            }
        }

        matches.Sort((a, b) => b.Score.CompareTo(a.Score));
        return ValueTask.FromResult<IReadOnlyList<VectorMatch>>(matches.Take(limit).ToArray());
    }
}

/// <summary>An in-memory graph store (for tests). Thread-safe.</summary>
/// <param name="name">The store's name. <value>Default <c>graph</c>.</value></param>
public sealed class InMemoryGraphStore(string name = "graph") : InMemorySyncStore(name, StoreKind.Graph), IGraphStore
{
    /// <inheritdoc />
    public ValueTask<IReadOnlyList<GraphNeighbor>> GetNeighborsAsync(EntityKey node, string? edgeType, EdgeDirection direction, CancellationToken cancellationToken)
    {
        var result = new List<GraphNeighbor>();
        lock (Gate)
        {
            if (direction != EdgeDirection.Incoming && Records.TryGetValue(node, out var own) && own.Entity is not null)
            {
                foreach (var edge in own.Entity.Edges)
                {
                    if (edgeType is null || edge.Type == edgeType)
                    {
                        result.Add(new GraphNeighbor(edge.Target, edge.Type, EdgeDirection.Outgoing, Records.TryGetValue(edge.Target, out var t) && t.Entity is not null));
                    }
                }
            }

            if (direction != EdgeDirection.Outgoing)
            {
                foreach (var (key, stored) in Records)
                {
                    if (stored.Entity is null)
                    {
                        continue;
                    }

                    foreach (var edge in stored.Entity.Edges)
                    {
                        if (edge.Target == node && (edgeType is null || edge.Type == edgeType))
                        {
                            result.Add(new GraphNeighbor(key, edge.Type, EdgeDirection.Incoming, true));
                        }
                    }
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyList<GraphNeighbor>>(result);
    }
}
