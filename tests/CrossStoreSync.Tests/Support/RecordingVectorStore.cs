using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Tests.Support;

/// <summary>Wraps a vector store and records, in order, every change the wrapped store accepted.</summary>
internal sealed class RecordingVectorStore(IVectorStore inner) : IVectorStore
{
    private readonly Lock _gate = new();
    private readonly List<(EntityKey Key, HlcTimestamp Version)> _applied = [];

    public string Name => inner.Name;

    public StoreKind Kind => inner.Kind;

    public IReadOnlyList<(EntityKey Key, HlcTimestamp Version)> Applied
    {
        get
        {
            lock (_gate)
            {
                return [.. _applied];
            }
        }
    }

    public ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken) => inner.InitializeAsync(collections, cancellationToken);

    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        await inner.ApplyAsync(changes, cancellationToken);
        lock (_gate)
        {
            foreach (var change in changes)
            {
                _applied.Add((change.Key, change.Version));
            }
        }
    }

    public ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken) => inner.ReadDigestsAsync(collection, ids, cancellationToken);

    public IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, CancellationToken cancellationToken) => inner.ScanDigestsAsync(collection, range, cancellationToken);

    public ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken) => inner.CountAsync(collection, cancellationToken);

    public ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken) => inner.RemoveByOriginAsync(collection, origin, cancellationToken);

    public ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken) => inner.SearchAsync(collection, query, limit, cancellationToken);
}
