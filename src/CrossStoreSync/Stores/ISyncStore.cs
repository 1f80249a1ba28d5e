using CrossStoreSync.Model;

namespace CrossStoreSync.Stores;

/// <summary>The kind of data a store holds, which decides its projection of an entity.</summary>
public enum StoreKind
{
    /// <summary>A document store: the whole entity; usually the source of truth.</summary>
    Document = 0,

    /// <summary>A vector store: key and vector.</summary>
    Vector = 1,

    /// <summary>A graph store: key (a node) and typed edges.</summary>
    Graph = 2,
}

/// <summary>
/// The contract every store adapter implements. The engine applies changes through it; the consistency checker reads
/// digests through it.
/// </summary>
/// <remarks>
/// <para>
/// Implementations must be safe for concurrent calls. <see cref="ApplyAsync"/> must be idempotent and version-guarded:
/// a change whose <see cref="EntityChange.Version"/> is not newer than the version the store holds for that key
/// changes nothing (deletes included, so stores should keep a versioned tombstone where they can). Every record
/// carries <c>_sync</c> metadata: version, content hash and bucket (<see cref="Hashing.KeyHash"/>).
/// </para>
/// <para>
/// Errors: throw <see cref="Errors.SyncStoreException"/> with <see cref="Errors.SyncStoreException.IsTransient"/> set
/// for failures worth retrying; any other exception except cancellation is treated as a permanent rejection of the
/// batch, after which the engine applies the batch's changes one by one to isolate and dead-letter the bad one.
/// </para>
/// </remarks>
public interface ISyncStore
{
    /// <summary>A unique, stable name; the store's cursor and dead letters are keyed by it.</summary>
    string Name { get; }

    /// <summary>What the store holds.</summary>
    StoreKind Kind { get; }

    /// <summary>Creates schema, tables or collections as needed. Called once at start-up; must be idempotent.</summary>
    /// <param name="collections">Every collection the application configured.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken);

    /// <summary>Applies a batch of changes idempotently with the version guard. Keys in a batch are distinct.</summary>
    /// <exception cref="Errors.SyncStoreException">The store failed; see <see cref="Errors.SyncStoreException.IsTransient"/>.</exception>
    ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken);

    /// <summary>Reads digests for the given ids of one collection. Ids the store does not hold are omitted.</summary>
    ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken);

    /// <summary>Streams digests of every record of a collection whose bucket is in <paramref name="range"/>, in pages (constant memory).</summary>
    IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, CancellationToken cancellationToken);

    /// <summary>Counts the live records of a collection.</summary>
    ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken);

    /// <summary>
    /// Removes, without leaving tombstones, every record of a collection whose <c>_sync</c> origin tag equals
    /// <paramref name="origin"/> (see <see cref="EntityChange.Origin"/>): what one operation such as a migration wrote
    /// and nothing newer has overwritten since. Used to roll a migration back.
    /// </summary>
    /// <returns>The number of records removed.</returns>
    ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken);
}

/// <summary>A configured collection, passed to stores at start-up.</summary>
/// <param name="Name">The collection name.</param>
/// <param name="VectorDimension">The vector dimension, or null when entities of this collection carry no vectors.</param>
/// <param name="Distance">The vector distance used for search.</param>
public sealed record CollectionDefinition(string Name, int? VectorDimension, VectorDistance Distance)
{
    /// <summary>
    /// What the engine does when a replica permanently rejects a write to this collection: dead-letter it (the default)
    /// or compensate it (undo it in every store). A write can override it with <see cref="Sync.WriteOptions"/>. Stores
    /// ignore it. <value>Default <see cref="Sync.ReplicaRejectionPolicy.DeadLetter"/>.</value>
    /// </summary>
    public Sync.ReplicaRejectionPolicy OnReplicaRejection { get; init; }
}

/// <summary>The similarity measure of a vector collection.</summary>
public enum VectorDistance
{
    /// <summary>Cosine similarity (higher is closer).</summary>
    Cosine = 0,

    /// <summary>Dot product (higher is closer).</summary>
    Dot = 1,
}
