using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Testing.Stores;

/// <summary>
/// The shared core of the in-memory stores: records with <c>_sync</c> metadata, versioned tombstones, the version
/// guard, digests computed from the content really held, and hooks to edit records behind the library's back so
/// tests can create drift. Thread-safe. For tests; not durable.
/// </summary>
public abstract class InMemorySyncStore : ISyncStore, ITombstoneStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<EntityKey, Stored> _records = [];
    private readonly Dictionary<string, CollectionDefinition> _collections = new(StringComparer.Ordinal);

    // Keys by the top 12 bits of their bucket, so a bucket-range scan visits only the partitions it covers
    // (stores index _sync.bucket for the same reason).
    private const int PartitionShift = 20;
    private readonly List<EntityKey>?[] _partitions = new List<EntityKey>?[1 << (32 - PartitionShift)];
    private long _generation;

    /// <summary>Creates the store.</summary>
    protected InMemorySyncStore(string name, StoreKind kind)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Kind = kind;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public StoreKind Kind { get; }

    /// <summary>Protects <see cref="Records"/> in derived types.</summary>
    protected Lock Gate => _gate;

    /// <summary>The records, tombstones included; access under <see cref="Gate"/>.</summary>
    protected Dictionary<EntityKey, Stored> Records => _records;

    /// <inheritdoc />
    public ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        lock (_gate)
        {
            foreach (var c in collections)
            {
                _collections[c.Name] = c;
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The collection definition, if configured.</summary>
    protected bool TryGetCollection(string name, out CollectionDefinition definition)
    {
        lock (_gate)
        {
            return _collections.TryGetValue(name, out definition!);
        }
    }

    /// <inheritdoc />
    public ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        cancellationToken.ThrowIfCancellationRequested();
        for (var i = 0; i < changes.Count; i++)
        {
            Validate(changes[i]);
        }

        lock (_gate)
        {
            for (var i = 0; i < changes.Count; i++)
            {
                var change = changes[i];
                ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_records, change.Key, out var exists);
                if (exists && slot.Version >= change.Version)
                {
                    continue;
                }

                var keyHash = KeyHash.Compute(change.Key);
                var bucket = (uint)(keyHash >> 32);
                slot = new Stored(change.Version, change.ContentHash, bucket, change.Entity, null, keyHash, change.Origin);
                if (!exists)
                {
                    AddToPartition(change.Key, bucket);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Rejects a change the store cannot hold; called for the whole batch before anything is applied.</summary>
    /// <exception cref="SyncStoreException">The change is invalid for this store (permanent).</exception>
    protected virtual void Validate(EntityChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (change.Kind == ChangeKind.Upsert && change.Entity is null)
        {
            throw new SyncStoreException($"Upsert of {SafeText.Quote(change.Key)} carries no entity.", isTransient: false, Name, change.Key, "apply");
        }
    }

    /// <summary>True when the record counts as live in this store (a vector store ignores entities without vectors).</summary>
    protected virtual bool IsLive(in Stored stored) => stored.Entity is not null;

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var result = new List<EntityDigest>(ids.Count);
        lock (_gate)
        {
            foreach (var id in ids)
            {
                var key = EntityKey.Trusted(collection, id);
                if (_records.TryGetValue(key, out var stored) && IsLive(stored))
                {
                    result.Add(Digest(key, stored));
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyList<EntityDigest>>(result);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // One partition at a time: the lock is never held while the caller consumes, and memory stays one
        // partition's worth whatever the collection's size.
        var page = new List<EntityDigest>();
        for (var p = range.First >> PartitionShift; p <= range.Last >> PartitionShift; p++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            page.Clear();
            lock (_gate)
            {
                if (_partitions[p] is { } keys)
                {
                    foreach (var key in keys)
                    {
                        if (key.Collection == collection && _records.TryGetValue(key, out var stored) && IsLive(stored) && range.Contains(stored.Bucket))
                        {
                            page.Add(Digest(key, stored));
                        }
                    }
                }
            }

            foreach (var digest in page)
            {
                yield return digest;
            }

            if (p == uint.MaxValue >> PartitionShift)
            {
                break;
            }
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        long count = 0;
        lock (_gate)
        {
            foreach (var (key, stored) in _records)
            {
                if (key.Collection == collection && IsLive(stored))
                {
                    count++;
                }
            }
        }

        return ValueTask.FromResult(count);
    }

    /// <summary>
    /// Collects up to <paramref name="limit"/> live records of a collection whose bucket is in range, ordered by
    /// (bucket, id) after <paramref name="afterId"/>, visiting only the partitions the range covers. Call under
    /// <see cref="Gate"/>.
    /// </summary>
    protected List<KeyValuePair<EntityKey, Stored>> CollectBucketPage(string collection, BucketRange range, string? afterId, int limit)
    {
        var afterBucket = afterId is null ? -1L : KeyHash.Bucket(EntityKey.Trusted(collection, afterId));
        var first = Math.Max((long)range.First, Math.Max(afterBucket, 0));
        var page = new List<KeyValuePair<EntityKey, Stored>>();
        var partition = new List<KeyValuePair<EntityKey, Stored>>();
        for (var p = first >> PartitionShift; p <= range.Last >> PartitionShift && page.Count < limit; p++)
        {
            partition.Clear();
            if (_partitions[p] is { } keys)
            {
                foreach (var key in keys)
                {
                    if (key.Collection != collection || !_records.TryGetValue(key, out var stored) || !IsLive(stored) || !range.Contains(stored.Bucket))
                    {
                        continue;
                    }

                    if (stored.Bucket < afterBucket || (stored.Bucket == afterBucket && string.CompareOrdinal(key.Id, afterId) <= 0))
                    {
                        continue;
                    }

                    partition.Add(new(key, stored));
                }
            }

            partition.Sort(static (a, b) => a.Value.Bucket != b.Value.Bucket ? a.Value.Bucket.CompareTo(b.Value.Bucket) : string.CompareOrdinal(a.Key.Id, b.Key.Id));
            for (var i = 0; i < partition.Count && page.Count < limit; i++)
            {
                page.Add(partition[i]);
            }
        }

        return page;
    }

    /// <inheritdoc />
    public ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        cancellationToken.ThrowIfCancellationRequested();
        long removed = 0;
        lock (_gate)
        {
            var tagged = new List<EntityKey>();
            foreach (var (key, stored) in _records)
            {
                if (key.Collection == collection && string.Equals(stored.Origin, origin, StringComparison.Ordinal))
                {
                    tagged.Add(key);
                }
            }

            foreach (var key in tagged)
            {
                _records.Remove(key);
                _partitions[KeyHash.Bucket(key) >> PartitionShift]!.Remove(key);
                removed++;
            }

            if (removed > 0)
            {
                _generation++;
            }
        }

        return ValueTask.FromResult(removed);
    }

    /// <inheritdoc />
    public ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var old = new List<EntityKey>();
            foreach (var (key, stored) in _records)
            {
                if (stored.Entity is null && stored.Version < olderThan && key.Collection == collection)
                {
                    old.Add(key);
                    if (old.Count == maxCount)
                    {
                        break;
                    }
                }
            }

            foreach (var key in old)
            {
                _records.Remove(key);
                _partitions[KeyHash.Bucket(key) >> PartitionShift]!.Remove(key);
            }

            if (old.Count > 0)
            {
                _generation++;
            }

            return ValueTask.FromResult(old.Count);
        }
    }

    /// <summary>The number of tombstones held for a collection (for tests of tombstone retention).</summary>
    public int CountTombstones(string collection)
    {
        lock (_gate)
        {
            return _records.Count(r => r.Key.Collection == collection && r.Value.Entity is null);
        }
    }

    /// <summary>The version held for a key (tombstones included), or null.</summary>
    public HlcTimestamp? GetVersion(EntityKey key)
    {
        lock (_gate)
        {
            return _records.TryGetValue(key, out var stored) ? stored.Version : null;
        }
    }

    /// <summary>Replaces a record's content without touching its <c>_sync</c> metadata, as an out-of-band edit would.</summary>
    /// <returns>False when the store holds no live record for the key.</returns>
    public bool TamperBehindTheLibrary(EntityKey key, Func<SyncEntity, SyncEntity> edit)
    {
        ArgumentNullException.ThrowIfNull(edit);
        lock (_gate)
        {
            ref var slot = ref CollectionsMarshal.GetValueRefOrNullRef(_records, key);
            if (Unsafe.IsNullRef(ref slot) || slot.Entity is null)
            {
                return false;
            }

            slot = slot with { Entity = edit(slot.Entity), Projection = null };
            return true;
        }
    }

    /// <summary>Overwrites a record's <c>_sync</c> version and hash (content unchanged), as a restore from an old backup would.</summary>
    /// <returns>False when the store holds no live record for the key.</returns>
    public bool RollBackBehindTheLibrary(EntityKey key, HlcTimestamp version, UInt128 hash)
    {
        lock (_gate)
        {
            ref var slot = ref CollectionsMarshal.GetValueRefOrNullRef(_records, key);
            if (Unsafe.IsNullRef(ref slot) || slot.Entity is null)
            {
                return false;
            }

            slot = slot with { Version = version, Hash = hash };
            return true;
        }
    }

    /// <summary>Removes a record entirely (no tombstone), as an out-of-band delete would.</summary>
    public bool EraseBehindTheLibrary(EntityKey key)
    {
        lock (_gate)
        {
            if (!_records.Remove(key))
            {
                return false;
            }

            _partitions[KeyHash.Bucket(key) >> PartitionShift]!.Remove(key);
            _generation++;
            return true;
        }
    }

    /// <summary>Writes a record directly, with the given metadata, as an out-of-band insert would.</summary>
    public void InsertBehindTheLibrary(SyncEntity entity, HlcTimestamp version)
    {
        ArgumentNullException.ThrowIfNull(entity);
        lock (_gate)
        {
            var keyHash = KeyHash.Compute(entity.Key);
            var bucket = (uint)(keyHash >> 32);
            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_records, entity.Key, out var exists);
            slot = new Stored(version, EntityEncoding.ComputeContentHash(entity), bucket, entity, null, keyHash);
            if (!exists)
            {
                AddToPartition(entity.Key, bucket);
            }
        }
    }

    /// <summary>Changes whenever a key is added or erased; lets derived types cache sorted views. Read under <see cref="Gate"/>.</summary>
    protected long Generation => _generation;

    private void AddToPartition(EntityKey key, uint bucket)
    {
        (_partitions[bucket >> PartitionShift] ??= []).Add(key);
        _generation++;
    }

    /// <summary>Builds a digest; call under the lock. The projection is computed from the entity held, then cached with it.</summary>
    private EntityDigest Digest(EntityKey key, in Stored stored)
    {
        var projection = stored.Projection;
        if (projection is null)
        {
            projection = ProjectionHash.Compute(stored.Entity!, Kind);
            CollectionsMarshal.GetValueRefOrNullRef(_records, key) = stored with { Projection = projection };
        }

        return new EntityDigest(key, stored.Version, stored.Hash, projection.Value, stored.Bucket, stored.KeyHash);
    }

    /// <summary>One record: the <c>_sync</c> metadata and the entity (null for a tombstone).</summary>
    /// <param name="Version">The version held.</param>
    /// <param name="Hash">The recorded content hash.</param>
    /// <param name="Bucket">The recorded bucket.</param>
    /// <param name="Entity">The entity, or null for a tombstone.</param>
    /// <param name="Projection">The projection hash of <paramref name="Entity"/>, computed on the first digest read and kept until the entity changes.</param>
    /// <param name="KeyHash">The key's 64-bit hash, kept so digest readers need not recompute it.</param>
    /// <param name="Origin">The origin tag of the change that wrote the record (see <see cref="EntityChange.Origin"/>).</param>
    protected internal readonly record struct Stored(HlcTimestamp Version, UInt128 Hash, uint Bucket, SyncEntity? Entity, UInt128? Projection = null, ulong KeyHash = 0, string? Origin = null);
}
