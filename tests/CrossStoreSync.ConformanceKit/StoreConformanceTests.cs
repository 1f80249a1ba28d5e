using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.ConformanceKit;

/// <summary>
/// The conformance suite every store adapter runs: idempotent upsert, version guard, delete and re-create, paging
/// through large collections, bucket-range scans, digests of what is really stored, bad input. Derive from the
/// kind-specific subclass and create a fresh, empty store in <see cref="CreateStoreAsync"/>.
/// </summary>
public abstract class StoreConformanceTests : IAsyncLifetime
{
    /// <summary>A collection with 4-dimensional cosine vectors.</summary>
    protected const string Items = "items";

    /// <summary>A second collection, to check collections are isolated.</summary>
    protected const string Other = "other";

    protected static readonly CollectionDefinition[] Collections =
    [
        new(Items, 4, VectorDistance.Cosine),
        new(Other, 4, VectorDistance.Dot),
    ];

    private ISyncStore? _store;

    protected ISyncStore Store => _store ?? throw new InvalidOperationException("Store not created.");

    /// <summary>Creates a fresh, empty store (not yet initialised).</summary>
    protected abstract ValueTask<ISyncStore> CreateStoreAsync();

    /// <summary>Changes the stored content of <paramref name="key"/> directly in the store, bypassing the library and leaving <c>_sync</c> untouched.</summary>
    protected abstract ValueTask TamperAsync(ISyncStore store, EntityKey key);

    public async Task InitializeAsync()
    {
        _store = await CreateStoreAsync();
        await _store.InitializeAsync(Collections, CancellationToken.None);
    }

    public virtual async Task DisposeAsync()
    {
        switch (_store)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }
    }

    protected static HlcTimestamp V(long ms) => new(1_700_000_000_000 + ms, 0, 1);

    protected static SyncEntity Entity(string id, string text = "hello", string collection = Items, float[]? vector = null, SyncEdge[]? edges = null)
    {
        var key = new EntityKey(collection, id);
        vector ??= [1, 2, 3, 4];
        edges ??= [new SyncEdge("MENTIONS", new EntityKey(collection, "target-" + id), Encoding.UTF8.GetBytes("{\"w\":1}"))];
        return new SyncEntity(key, Encoding.UTF8.GetBytes($"{{\"text\":\"{text}\",\"n\":1.5}}"), vector, edges);
    }

    protected ValueTask Apply(params EntityChange[] changes) => Store.ApplyAsync(changes, CancellationToken.None);

    protected async Task<EntityDigest?> DigestOf(EntityKey key)
    {
        var digests = await Store.ReadDigestsAsync(key.Collection, [key.Id], CancellationToken.None);
        Assert.True(digests.Count <= 1, $"ReadDigestsAsync returned {digests.Count} digests for one id.");
        return digests.Count == 0 ? null : digests[0];
    }

    protected async Task<List<EntityDigest>> ScanAll(string collection, BucketRange? range = null)
    {
        var result = new List<EntityDigest>();
        await foreach (var d in Store.ScanDigestsAsync(collection, range ?? BucketRange.All, CancellationToken.None))
        {
            result.Add(d);
        }

        return result;
    }

    [Fact]
    public async Task Upsert_is_stored_with_its_sync_metadata_and_projection_hash()
    {
        var entity = Entity("a");
        var change = EntityChange.Upsert(entity, V(1));
        await Apply(change);

        var digest = await DigestOf(entity.Key);
        Assert.NotNull(digest);
        Assert.Equal(entity.Key, digest.Value.Key);
        Assert.Equal(V(1), digest.Value.Version);
        Assert.Equal(change.ContentHash, digest.Value.RecordedHash);
        Assert.Equal(ProjectionHash.Compute(entity, Store.Kind), digest.Value.ProjectionHash);
        Assert.Equal(KeyHash.Bucket(entity.Key), digest.Value.Bucket);
        Assert.Equal(KeyHash.Compute(entity.Key), digest.Value.GetKeyHash());
        Assert.Equal(1, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task Applying_the_same_change_twice_is_idempotent()
    {
        var change = EntityChange.Upsert(Entity("a"), V(1));
        await Apply(change);
        var first = await DigestOf(change.Key);
        await Apply(change);
        var second = await DigestOf(change.Key);

        Assert.Equal(first, second);
        Assert.Equal(1, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task A_change_not_newer_than_the_stored_version_changes_nothing()
    {
        var current = EntityChange.Upsert(Entity("a", "current"), V(10));
        await Apply(current);
        await Apply(EntityChange.Upsert(Entity("a", "older"), V(5)));
        await Apply(EntityChange.Upsert(Entity("a", "same-version"), V(10)));

        var digest = await DigestOf(current.Key);
        Assert.Equal(V(10), digest!.Value.Version);
        Assert.Equal(current.ContentHash, digest.Value.RecordedHash);
        Assert.Equal(ProjectionHash.Compute(current.Entity!, Store.Kind), digest.Value.ProjectionHash);
    }

    [Fact]
    public async Task Newer_upsert_replaces_the_record()
    {
        await Apply(EntityChange.Upsert(Entity("a", "one", vector: [1, 0, 0, 0]), V(1)));
        var newer = EntityChange.Upsert(Entity("a", "two", vector: [0, 1, 0, 0], edges: []), V(2));
        await Apply(newer);

        var digest = await DigestOf(newer.Key);
        Assert.Equal(V(2), digest!.Value.Version);
        Assert.Equal(newer.ContentHash, digest.Value.RecordedHash);
        Assert.Equal(ProjectionHash.Compute(newer.Entity!, Store.Kind), digest.Value.ProjectionHash);
    }

    [Fact]
    public async Task Delete_removes_the_record_and_an_older_upsert_does_not_bring_it_back()
    {
        var key = new EntityKey(Items, "a");
        await Apply(EntityChange.Upsert(Entity("a"), V(1)));
        await Apply(EntityChange.Delete(key, V(3)));
        Assert.Null(await DigestOf(key));

        await Apply(EntityChange.Upsert(Entity("a", "late"), V(2)));
        Assert.Null(await DigestOf(key));
        Assert.Equal(0, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task Purging_tombstones_removes_only_tombstones_older_than_the_horizon()
    {
        var tombstones = Assert.IsAssignableFrom<ITombstoneStore>(Store);
        await Apply(EntityChange.Upsert(Entity("live"), V(1)));
        await Apply(EntityChange.Upsert(Entity("old"), V(1)), EntityChange.Upsert(Entity("young"), V(1)), EntityChange.Upsert(Entity("other", collection: Other), V(1)));
        await Apply(EntityChange.Delete(new EntityKey(Items, "old"), V(2)), EntityChange.Delete(new EntityKey(Items, "young"), V(10)), EntityChange.Delete(new EntityKey(Other, "other"), V(2)));
        await Apply(EntityChange.Delete(new EntityKey(Items, "never-written"), V(3)));

        Assert.Equal(2, await tombstones.PurgeTombstonesAsync(Items, V(5), 100, CancellationToken.None));
        Assert.Equal(0, await tombstones.PurgeTombstonesAsync(Items, V(5), 100, CancellationToken.None));

        // A purged tombstone no longer guards its key: an older change is applied again (the documented risk).
        await Apply(EntityChange.Upsert(Entity("old", "late"), V(3)));
        Assert.Equal(V(3), (await DigestOf(new EntityKey(Items, "old")))?.Version);

        // Younger tombstones, other collections and live records stay.
        await Apply(EntityChange.Upsert(Entity("young", "late"), V(5)), EntityChange.Upsert(Entity("other", "late", collection: Other), V(1)));
        Assert.Null(await DigestOf(new EntityKey(Items, "young")));
        Assert.Null(await DigestOf(new EntityKey(Other, "other")));
        Assert.Equal(V(1), (await DigestOf(new EntityKey(Items, "live")))?.Version);
        Assert.Equal(2, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task Purging_tombstones_removes_at_most_the_batch_size_per_call()
    {
        var tombstones = Assert.IsAssignableFrom<ITombstoneStore>(Store);
        var keys = Enumerable.Range(0, 25).Select(i => new EntityKey(Items, "t" + i)).ToArray();
        await Store.ApplyAsync(keys.Select(k => EntityChange.Upsert(Entity(k.Id), V(1))).ToArray(), CancellationToken.None);
        await Store.ApplyAsync(keys.Select(k => EntityChange.Delete(k, V(2))).ToArray(), CancellationToken.None);

        var purged = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            purged.Add(await tombstones.PurgeTombstonesAsync(Items, V(3), 10, CancellationToken.None));
        }

        Assert.Equal([10, 10, 5, 0], purged);
        Assert.Equal(0, await Store.CountAsync(Items, CancellationToken.None));
        await Apply(EntityChange.Upsert(Entity("t7"), V(1)));
        Assert.Equal(1, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task Delete_then_newer_upsert_recreates_the_record()
    {
        var key = new EntityKey(Items, "a");
        await Apply(EntityChange.Upsert(Entity("a"), V(1)));
        await Apply(EntityChange.Delete(key, V(2)));
        var again = EntityChange.Upsert(Entity("a", "again"), V(3));
        await Apply(again);

        var digest = await DigestOf(key);
        Assert.Equal(V(3), digest!.Value.Version);
        Assert.Equal(again.ContentHash, digest.Value.RecordedHash);
    }

    [Fact]
    public async Task Delete_of_a_key_never_written_is_accepted()
    {
        var key = new EntityKey(Items, "never");
        await Apply(EntityChange.Delete(key, V(1)));
        Assert.Null(await DigestOf(key));
        await Apply(EntityChange.Upsert(Entity("never"), V(0)));
        Assert.Null(await DigestOf(key));
    }

    [Fact]
    public async Task A_batch_applies_every_change_and_guards_each_version()
    {
        await Apply(EntityChange.Upsert(Entity("existing", "new"), V(10)));
        var batch = new List<EntityChange> { EntityChange.Upsert(Entity("existing", "stale"), V(5)) };
        for (var i = 0; i < 50; i++)
        {
            batch.Add(EntityChange.Upsert(Entity("b" + i), V(20)));
        }

        await Store.ApplyAsync(batch, CancellationToken.None);
        Assert.Equal(51, await Store.CountAsync(Items, CancellationToken.None));
        Assert.Equal(V(10), (await DigestOf(new EntityKey(Items, "existing")))!.Value.Version);
    }

    [Fact]
    public async Task Scanning_a_large_collection_returns_every_record_exactly_once()
    {
        const int count = 2500;
        for (var start = 0; start < count; start += 500)
        {
            var batch = Enumerable.Range(start, 500).Select(i => EntityChange.Upsert(Entity($"e{i:D5}"), V(i + 1))).ToArray();
            await Store.ApplyAsync(batch, CancellationToken.None);
        }

        await Apply(EntityChange.Upsert(Entity("elsewhere", collection: Other), V(1)));
        var all = await ScanAll(Items);

        Assert.Equal(count, all.Count);
        Assert.Equal(count, all.Select(d => d.Key.Id).Distinct(StringComparer.Ordinal).Count());
        Assert.All(all, d => Assert.Equal(Items, d.Key.Collection));
        Assert.Equal(count, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task Bucket_range_scan_returns_exactly_the_records_in_the_range()
    {
        var entities = Enumerable.Range(0, 400).Select(i => Entity("k" + i)).ToArray();
        await Store.ApplyAsync(entities.Select(e => EntityChange.Upsert(e, V(1))).ToArray(), CancellationToken.None);

        for (uint quarter = 0; quarter < 4; quarter++)
        {
            var range = BucketRange.ForPrefix(2, quarter);
            var expected = entities.Where(e => range.Contains(KeyHash.Bucket(e.Key))).Select(e => e.Key.Id).Order(StringComparer.Ordinal).ToArray();
            var actual = (await ScanAll(Items, range)).Select(d => d.Key.Id).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public async Task Digest_reveals_content_edited_outside_the_library()
    {
        var entity = Entity("a");
        var change = EntityChange.Upsert(entity, V(1));
        await Apply(change);
        await TamperAsync(Store, entity.Key);

        var digest = await DigestOf(entity.Key);
        Assert.NotNull(digest);
        Assert.Equal(change.ContentHash, digest.Value.RecordedHash);
        Assert.NotEqual(ProjectionHash.Compute(entity, Store.Kind), digest.Value.ProjectionHash);
    }

    [Fact]
    public async Task ReadDigests_returns_only_the_ids_the_store_holds()
    {
        await Apply(EntityChange.Upsert(Entity("a"), V(1)), EntityChange.Upsert(Entity("b"), V(1)));
        var digests = await Store.ReadDigestsAsync(Items, ["a", "missing", "b"], CancellationToken.None);
        Assert.Equal(["a", "b"], digests.Select(d => d.Key.Id).Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public async Task Collections_are_isolated()
    {
        await Apply(EntityChange.Upsert(Entity("same", collection: Items), V(1)));
        await Apply(EntityChange.Upsert(Entity("same", collection: Other), V(1)));
        await Apply(EntityChange.Delete(new EntityKey(Other, "same"), V(2)));

        Assert.NotNull(await DigestOf(new EntityKey(Items, "same")));
        Assert.Null(await DigestOf(new EntityKey(Other, "same")));
    }

    [Theory]
    [InlineData("with space")]
    [InlineData("a:b")]
    [InlineData("2024-01-01T00:00:00Z")]
    [InlineData("0123456789")]
    [InlineData("ünïcødé-日本語-🙂")]
    [InlineData("quote'\"back\\slash")]
    [InlineData("-")]
    public async Task Unusual_ids_round_trip_exactly(string id)
    {
        var entity = Entity(id);
        await Apply(EntityChange.Upsert(entity, V(1)));
        var digest = await DigestOf(entity.Key);
        Assert.Equal(id, digest!.Value.Key.Id);
        Assert.Contains((await ScanAll(Items)).Select(d => d.Key.Id), x => x == id);
    }

    [Fact]
    public async Task RemoveByOrigin_removes_exactly_the_records_that_origin_still_holds()
    {
        // Written by the "mig-1" operation: a, b and c. Then b is overwritten by a newer, untagged change and c by a
        // change of another origin; d was written by the log before and is not touched by mig-1 (older version).
        await Apply(EntityChange.Upsert(Entity("d"), V(5)));
        await Apply(
            EntityChange.Upsert(Entity("a"), V(1)).WithOrigin("mig-1"),
            EntityChange.Upsert(Entity("b"), V(1)).WithOrigin("mig-1"),
            EntityChange.Upsert(Entity("c"), V(1)).WithOrigin("mig-1"),
            EntityChange.Upsert(Entity("d"), V(1)).WithOrigin("mig-1"),
            EntityChange.Upsert(Entity("a", collection: Other), V(1)).WithOrigin("mig-1"));
        await Apply(EntityChange.Upsert(Entity("b", "newer"), V(2)), EntityChange.Upsert(Entity("c", "other"), V(2)).WithOrigin("mig-2"));

        var removed = await Store.RemoveByOriginAsync(Items, "mig-1", CancellationToken.None);

        Assert.Equal(1, removed);
        Assert.Equal(["b", "c", "d"], (await ScanAll(Items)).Select(d => d.Key.Id).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(V(2), (await DigestOf(new EntityKey(Items, "b")))?.Version);
        Assert.NotNull(await DigestOf(new EntityKey(Other, "a")));

        // Removed without a tombstone: the same change can be written again.
        await Apply(EntityChange.Upsert(Entity("a"), V(1)));
        Assert.Equal(V(1), (await DigestOf(new EntityKey(Items, "a")))?.Version);
        Assert.Equal(0, await Store.RemoveByOriginAsync(Items, "no-such-origin", CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_applies_keep_the_newest_version()
    {
        var versions = Enumerable.Range(1, 40).OrderBy(_ => Random.Shared.Next()).ToArray();
        await Parallel.ForEachAsync(versions, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (v, ct) =>
            await Store.ApplyAsync([EntityChange.Upsert(Entity("hot", "v" + v), V(v))], ct));

        var digest = await DigestOf(new EntityKey(Items, "hot"));
        Assert.Equal(V(40), digest!.Value.Version);
        Assert.Equal(EntityEncoding.ComputeContentHash(Entity("hot", "v40")), digest.Value.RecordedHash);
    }

    [Fact]
    public async Task An_upsert_without_an_entity_is_rejected_and_nothing_is_written()
    {
        var bad = (EntityChange)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(EntityChange));
        var good = EntityChange.Upsert(Entity("good"), V(1));
        var error = await Record.ExceptionAsync(async () => await Store.ApplyAsync([good, bad], CancellationToken.None));
        Assert.NotNull(error);
        Assert.True(error is SyncStoreException { IsTransient: false } or ArgumentException, $"Unexpected {error.GetType()}: {error.Message}");
        Assert.Null(await DigestOf(good.Key));
    }
}
