using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.Qdrant.Fake.Api;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>Qdrant-specific behaviour: point ids, collection checks, the version guard, cosine digests and tombstones.</summary>
public sealed class QdrantStoreTests : IAsyncLifetime
{
    private static readonly CollectionDefinition[] Items = [new("items", 4, VectorDistance.Cosine)];
    private readonly List<QdrantVectorStore> _stores = [];
    private FakeQdrantServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeQdrantServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            store.Dispose();
        }

        var violations = _server.Violations.ToArray();
        await _server.DisposeAsync();
        Assert.True(violations.Length == 0, "Calls the fake does not implement:\n" + string.Join('\n', violations));
    }

    private QdrantVectorStore Store(Action<QdrantVectorStoreOptions>? configure = null)
    {
        var options = new QdrantVectorStoreOptions { Address = _server.Address, RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        configure?.Invoke(options);
        var store = new QdrantVectorStore(options);
        _stores.Add(store);
        return store;
    }

    private static EntityChange Upsert(string id, long version, float[]? vector = null) =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), "{}", vector ?? [1, 2, 3, 4]), new HlcTimestamp(1_700_000_000_000 + version, 0, 1));

    [Theory]
    [InlineData("item-1", "5f424a72-a3d8-57e8-9970-10a1a67c85cd")]
    [InlineData("ünïcødé-日本語-🙂", "d6caf1c4-5360-5316-b750-a9dffccd5088")]
    public void Point_ids_are_RFC_9562_version_5_uuids_of_the_entity_id(string id, string expected)
    {
        // Expected values from Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/crossstoresync/point-ids"), id).
        Assert.Equal(expected, PointIds.For(id));
        Assert.Equal(5, PointIds.VersionOf(Guid.Parse(PointIds.For(id))));
        Assert.Equal(expected, PointIds.ToPointId(id).Uuid);
    }

    [Theory]
    [InlineData("{5F424A72-A3D8-57E8-9970-10A1A67C85CD}")]
    [InlineData("5f424a72a3d857e8997010a1a67c85cd")]
    [InlineData("5F424A72-A3D8-57E8-9970-10A1A67C85CD")]
    public void Returned_ids_are_normalised_to_the_lowercase_hyphenated_form(string returned) =>
        Assert.Equal("5f424a72-a3d8-57e8-9970-10a1a67c85cd", PointIds.Text(new global::Qdrant.Client.Grpc.PointId { Uuid = returned }));

    [Fact]
    public async Task Initialize_creates_the_collection_with_a_named_vector_and_the_sync_indexes_and_is_idempotent()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.InitializeAsync(Items, CancellationToken.None);

        Assert.Equal(1, _server.Requests["/qdrant.Collections/Create items"]);
        Assert.Equal(8, _server.Requests["/qdrant.Points/CreateFieldIndex items"]);
        Assert.Equal(
            new Dictionary<string, FieldType>
            {
                ["_sync.bucket"] = FieldType.Integer,
                ["_sync.version"] = FieldType.Integer,
                ["_sync.live"] = FieldType.Bool,
                ["_sync.origin"] = FieldType.Keyword,
            },
            _server.Indexes("items"));
    }

    [Fact]
    public async Task A_collection_that_exists_with_another_size_fails_clearly()
    {
        await Store().InitializeAsync(Items, CancellationToken.None);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () =>
            await Store().InitializeAsync([new CollectionDefinition("items", 8, VectorDistance.Cosine)], CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Contains("size 4", error.Message, StringComparison.Ordinal);
        Assert.Contains("size 8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_collection_that_exists_with_another_distance_fails_clearly()
    {
        await Store().InitializeAsync(Items, CancellationToken.None);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () =>
            await Store().InitializeAsync([new CollectionDefinition("items", 4, VectorDistance.Dot)], CancellationToken.None));
        Assert.Contains("distance Cosine", error.Message, StringComparison.Ordinal);
        Assert.Contains("distance Dot", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_collection_created_elsewhere_with_an_unnamed_vector_fails_clearly()
    {
        _server.CreateUnnamedCollection("items", 4, Distance.Cosine);
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store().InitializeAsync(Items, CancellationToken.None));
        Assert.Contains("unnamed vector", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_older_than_1_17_is_refused_at_start()
    {
        _server.Version = "1.16.3";
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store().InitializeAsync(Items, CancellationToken.None));
        Assert.Contains("1.16.3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cosine_vectors_are_normalised_by_Qdrant_but_digests_still_match_the_source()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var change = Upsert("a", 1, [3, 0, 4, 0]);
        await store.ApplyAsync([change], CancellationToken.None);

        var stored = _server.Point("items", PointIds.For("a"))!.Vectors["embedding"];
        Assert.Equal([0.6f, 0f, 0.8f, 0f], stored);
        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.Equal(Hashing.ProjectionHash.Compute(change.Entity!, StoreKind.Vector), digest.ProjectionHash);
    }

    [Fact]
    public async Task Editing_the_raw_copy_in_the_payload_is_detected_as_drift()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var change = Upsert("a", 1, [3, 0, 4, 0]);
        await store.ApplyAsync([change], CancellationToken.None);
        _server.Point("items", PointIds.For("a"))!.SetSync("raw", new Value { StringValue = QdrantRecord.EncodeVector([6, 0, 8, 1]) });

        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.NotEqual(Hashing.ProjectionHash.Compute(change.Entity!, StoreKind.Vector), digest.ProjectionHash);
    }

    [Fact]
    public async Task A_delete_leaves_a_versioned_tombstone_point_without_a_vector()
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Delete(new EntityKey("items", "a"), new HlcTimestamp(1_700_000_000_000 + 5, 0, 1))], CancellationToken.None);

        var point = _server.Point("items", PointIds.For("a"))!;
        Assert.Empty(point.Vectors);
        Assert.True(point.Sync("deleted")!.BoolValue);
        Assert.False(point.Sync("live")!.BoolValue);
        Assert.Equal(new HlcTimestamp(1_700_000_000_000 + 5, 0, 1).Value, point.Sync("version")!.IntegerValue);
        Assert.Empty(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task Versions_beyond_2_pow_53_are_guarded_exactly()
    {
        // HLC versions are 63-bit; two versions one apart must still be ordered (a double would merge them).
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        var high = new HlcTimestamp(long.MaxValue - 10);
        var higher = new HlcTimestamp(long.MaxValue - 9);
        var key = new EntityKey("items", "big");
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, "{}", new float[] { 1, 0, 0, 0 }), higher)], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, "{}", new float[] { 0, 1, 0, 0 }), high)], CancellationToken.None);

        Assert.Equal(higher, Assert.Single(await store.ReadDigestsAsync("items", ["big"], CancellationToken.None)).Version);
        Assert.Equal(higher.Value, _server.Point("items", PointIds.For("big"))!.Sync("version")!.IntegerValue);
    }

    [Theory]
    [InlineData(3, 5)] // the second writer's change is older than ours: our write must still win, after a re-check
    [InlineData(7, 7)] // it is newer: ours must not overwrite it
    public async Task A_second_writer_between_read_and_write_cannot_make_an_older_change_win(long intruderVersion, long expectedVersion)
    {
        var store = Store();
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.ApplyAsync([Upsert("a", 1)], CancellationToken.None);

        // Between the adapter's version read and its write, another writer replaces the point.
        _server.BeforeNextUpsert = server =>
            server.Point("items", PointIds.For("a"))!.SetSync("version", new Value { IntegerValue = new HlcTimestamp(1_700_000_000_000 + intruderVersion, 0, 1).Value });
        await store.ApplyAsync([Upsert("a", 5)], CancellationToken.None);

        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
        Assert.Equal(new HlcTimestamp(1_700_000_000_000 + expectedVersion, 0, 1), digest.Version);
        Assert.Null(_server.BeforeNextUpsert);
    }

    [Fact]
    public async Task Scans_page_through_the_collection_in_pages_of_BatchSize()
    {
        var store = Store(o => o.BatchSize = 7);
        await store.InitializeAsync(Items, CancellationToken.None);
        await store.ApplyAsync(Enumerable.Range(0, 50).Select(i => Upsert("k" + i, 1)).ToArray(), CancellationToken.None);

        var seen = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var digest in store.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            Assert.True(seen.Add(digest.Key.Id), $"{digest.Key.Id} was returned twice.");
        }

        Assert.Equal(50, seen.Count);
        Assert.Equal(8, _server.Requests["/qdrant.Points/Scroll items"]); // 7 full pages and one of 1
    }

    [Fact]
    public void Options_are_validated_with_the_bad_value_quoted()
    {
        var error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(new QdrantVectorStoreOptions { Address = new Uri("ftp://x/") }));
        Assert.Contains("ftp://x/", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(new QdrantVectorStoreOptions { Address = new Uri("http://localhost:6334/qdrant") }));
        Assert.Contains("without a path", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(new QdrantVectorStoreOptions { Address = _server.Address, BatchSize = 0 }));
        Assert.Contains("BatchSize is 0", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(new QdrantVectorStoreOptions { Address = new Uri("https://localhost:6334"), CertificateThumbprint = "abc" }));
        Assert.Contains("'abc'", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(new QdrantVectorStoreOptions { Address = _server.Address, CertificateThumbprint = new string('a', 64) }));
        Assert.Contains("needs an https address", error.Message, StringComparison.Ordinal);
        using var client = new global::Qdrant.Client.QdrantClient(_server.Address);
        error = Assert.Throws<ArgumentException>(() => new QdrantVectorStore(client, new QdrantVectorStoreOptions { ApiKey = "k" }));
        Assert.Contains("was given a QdrantClient", error.Message, StringComparison.Ordinal);
    }
}
