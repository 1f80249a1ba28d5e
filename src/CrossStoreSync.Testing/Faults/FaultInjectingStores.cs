using CrossStoreSync.Errors;

using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Testing.Faults;

/// <summary>Wraps a store and injects the faults of a <see cref="StoreFaults"/> plan into its applies.</summary>
/// <typeparam name="TStore">The wrapped store's contract.</typeparam>
public abstract class FaultInjectingStore<TStore> : ISyncStore, ITombstoneStore
    where TStore : ISyncStore
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    protected FaultInjectingStore(TStore inner, StoreFaults faults)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(faults);
        Inner = inner;
        Faults = faults;
    }

    /// <summary>The wrapped store.</summary>
    public TStore Inner { get; }

    /// <summary>The fault plan.</summary>
    public StoreFaults Faults { get; }

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public StoreKind Kind => Inner.Kind;

    /// <inheritdoc />
    public ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken) => Inner.InitializeAsync(collections, cancellationToken);

    /// <inheritdoc />
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        await Faults.BeforeCallAsync(Name, changes, cancellationToken).ConfigureAwait(false);
        await Inner.ApplyAsync(changes, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken) => Inner.ReadDigestsAsync(collection, ids, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, CancellationToken cancellationToken) => Inner.ScanDigestsAsync(collection, range, cancellationToken);

    /// <inheritdoc />
    public ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken) => Inner.CountAsync(collection, cancellationToken);

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">The wrapped store does not implement <see cref="ITombstoneStore"/>.</exception>
    public ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken) =>
        Inner is ITombstoneStore tombstones
            ? tombstones.PurgeTombstonesAsync(collection, olderThan, maxCount, cancellationToken)
            : throw new NotSupportedException($"Store {SafeText.Quote(Name)} ({Inner.GetType().Name}) cannot purge tombstones.");

    /// <inheritdoc />
    public ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken) => Inner.RemoveByOriginAsync(collection, origin, cancellationToken);
}

/// <summary>A fault-injecting <see cref="IDocumentStore"/>.</summary>
public sealed class FaultInjectingDocumentStore(IDocumentStore inner, StoreFaults faults) : FaultInjectingStore<IDocumentStore>(inner, faults), IDocumentStore
{
    /// <inheritdoc />
    public ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken) => Inner.ReadAsync(key, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken) => Inner.ScanAsync(collection, afterId, limit, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken) => Inner.ScanBucketsAsync(collection, range, afterId, limit, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, EntityParts parts, CancellationToken cancellationToken) => Inner.ScanBucketsAsync(collection, range, afterId, limit, parts, cancellationToken);
}

/// <summary>A fault-injecting <see cref="IVectorStore"/>.</summary>
public sealed class FaultInjectingVectorStore(IVectorStore inner, StoreFaults faults) : FaultInjectingStore<IVectorStore>(inner, faults), IVectorStore
{
    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken) => Inner.SearchAsync(collection, query, limit, cancellationToken);
}

/// <summary>A fault-injecting <see cref="IGraphStore"/>.</summary>
public sealed class FaultInjectingGraphStore(IGraphStore inner, StoreFaults faults) : FaultInjectingStore<IGraphStore>(inner, faults), IGraphStore
{
    /// <inheritdoc />
    public ValueTask<IReadOnlyList<GraphNeighbor>> GetNeighborsAsync(EntityKey node, string? edgeType, EdgeDirection direction, CancellationToken cancellationToken) => Inner.GetNeighborsAsync(node, edgeType, direction, cancellationToken);
}
