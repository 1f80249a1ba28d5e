using CrossStoreSync.Model;

namespace CrossStoreSync.Stores;

/// <summary>A document store: holds whole entities and is usually the source of truth.</summary>
public interface IDocumentStore : ISyncStore
{
    /// <summary>Reads one live entity, or null when the store does not hold it (or holds a tombstone).</summary>
    ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken);

    /// <summary>Reads a page of live entities of a collection, ordered by id, starting after <paramref name="afterId"/>.</summary>
    /// <param name="collection">The collection.</param>
    /// <param name="afterId">The last id of the previous page, or null for the first page.</param>
    /// <param name="limit">The page size (at least 1).</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Reads a page of live entities of a collection whose <c>_sync</c> bucket is in <paramref name="range"/>, ordered by
    /// (bucket, id) and starting after <paramref name="afterId"/>. The bucket of an id is
    /// <see cref="Hashing.KeyHash.Bucket"/> of its key, so the id alone marks the position. Disjoint ranges let several
    /// workers stream one collection in parallel (migration backfills); stores index the bucket for it.
    /// </summary>
    /// <param name="collection">The collection.</param>
    /// <param name="range">The buckets to read.</param>
    /// <param name="afterId">The last id of the previous page, or null for the first page.</param>
    /// <param name="limit">The page size (at least 1).</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="ScanBucketsAsync(string, BucketRange, string?, int, CancellationToken)"/>, telling the store which
    /// parts of each entity the caller uses: a backfill into a graph store needs only the edges. A store may leave the
    /// other parts empty (saving reads and allocations) or return them anyway; the version and content hash are always
    /// those of the whole stored entity.
    /// </summary>
    /// <param name="collection">The collection.</param>
    /// <param name="range">The buckets to read.</param>
    /// <param name="afterId">The last id of the previous page, or null for the first page.</param>
    /// <param name="limit">The page size (at least 1).</param>
    /// <param name="parts">The parts the caller uses.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, EntityParts parts, CancellationToken cancellationToken) =>
        ScanBucketsAsync(collection, range, afterId, limit, cancellationToken);
}

/// <summary>Parts of an entity, for reads that need only some of them.</summary>
[Flags]
public enum EntityParts
{
    /// <summary>Key, version and content hash only.</summary>
    None = 0,

    /// <summary>The JSON document.</summary>
    Document = 1,

    /// <summary>The vector.</summary>
    Vector = 2,

    /// <summary>The edges.</summary>
    Edges = 4,

    /// <summary>Everything.</summary>
    All = Document | Vector | Edges,
}

/// <summary>A vector store: holds each entity's vector and searches by similarity.</summary>
/// <remarks>An upsert of an entity without a vector removes any vector the store held for the key.</remarks>
public interface IVectorStore : ISyncStore
{
    /// <summary>Returns the <paramref name="limit"/> nearest live vectors of a collection.</summary>
    /// <exception cref="ArgumentException">The query's dimension differs from the collection's.</exception>
    ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken);
}

/// <summary>One search hit.</summary>
/// <param name="Key">The entity.</param>
/// <param name="Score">Similarity; higher is closer.</param>
public readonly record struct VectorMatch(EntityKey Key, float Score);

/// <summary>A graph store: holds each entity as a node and its edges as typed relationships.</summary>
/// <remarks>Edges may point to nodes that do not exist yet; deleting a node removes its outgoing and incoming edges.</remarks>
public interface IGraphStore : ISyncStore
{
    /// <summary>Returns the neighbours of a node along edges of <paramref name="edgeType"/> (any type when null).</summary>
    ValueTask<IReadOnlyList<GraphNeighbor>> GetNeighborsAsync(EntityKey node, string? edgeType, EdgeDirection direction, CancellationToken cancellationToken);
}

/// <summary>Which edges <see cref="IGraphStore.GetNeighborsAsync"/> follows.</summary>
public enum EdgeDirection
{
    /// <summary>Edges from the node.</summary>
    Outgoing = 0,

    /// <summary>Edges to the node.</summary>
    Incoming = 1,

    /// <summary>Both.</summary>
    Both = 2,
}

/// <summary>A neighbour found by <see cref="IGraphStore.GetNeighborsAsync"/>.</summary>
/// <param name="Key">The neighbour node.</param>
/// <param name="EdgeType">The edge's type.</param>
/// <param name="Direction">Whether the edge leaves (<see cref="EdgeDirection.Outgoing"/>) or enters the queried node.</param>
/// <param name="Exists">False when the neighbour is a placeholder created by an edge and never written itself.</param>
public readonly record struct GraphNeighbor(EntityKey Key, string EdgeType, EdgeDirection Direction, bool Exists);
