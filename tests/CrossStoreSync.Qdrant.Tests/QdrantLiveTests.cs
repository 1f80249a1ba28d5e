using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using Qdrant.Client;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>Runs only when <c>QDRANT_GRPC_URL</c> is set (and <c>QDRANT_API_KEY</c> if the server needs one).</summary>
public sealed class QdrantLiveFactAttribute : FactAttribute
{
    public QdrantLiveFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("QDRANT_GRPC_URL")))
        {
            Skip = "QDRANT_GRPC_URL is not set: no Qdrant server to test against (start one and set QDRANT_GRPC_URL to its gRPC address, e.g. http://localhost:6334).";
        }
    }
}

/// <summary>The adapter against a real Qdrant server over gRPC, in collections of its own that it deletes afterwards.</summary>
public sealed class QdrantLiveTests : IAsyncLifetime
{
    private readonly string _prefix = "css_live_" + Guid.NewGuid().ToString("N")[..8] + "_";
    private QdrantVectorStore? _store;

    private static string? ApiKey => Environment.GetEnvironmentVariable("QDRANT_API_KEY") is { Length: > 0 } key ? key : null;

    public Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("QDRANT_GRPC_URL") is { Length: > 0 } url)
        {
            _store = new QdrantVectorStore(new QdrantVectorStoreOptions { Address = new Uri(url), ApiKey = ApiKey, CollectionPrefix = _prefix });
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            _store.Dispose();
            using var client = new QdrantClient(new Uri(Environment.GetEnvironmentVariable("QDRANT_GRPC_URL")!), ApiKey);
            foreach (var collection in new[] { "items", "other" })
            {
                if (await client.CollectionExistsAsync(_prefix + collection))
                {
                    await client.DeleteCollectionAsync(_prefix + collection);
                }
            }
        }
    }

    private static HlcTimestamp V(long ms) => new(1_700_000_000_000 + ms, 0, 1);

    [QdrantLiveFact]
    public async Task Round_trip_against_a_real_server()
    {
        var store = _store!;
        CollectionDefinition[] collections = [new("items", 4, VectorDistance.Cosine), new("other", 4, VectorDistance.Dot)];
        await store.InitializeAsync(collections, CancellationToken.None);
        await store.InitializeAsync(collections, CancellationToken.None);

        var entities = Enumerable.Range(0, 600).Select(i => SyncEntity.FromJson(new EntityKey("items", "k" + i), "{}", new float[] { i + 1, 1, 0, -1 })).ToArray();
        await store.ApplyAsync(entities.Select(e => EntityChange.Upsert(e, V(2))).ToArray(), CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(entities[0].Key, "{}", new float[] { 9, 9, 9, 9 }), V(1))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Delete(entities[1].Key, V(3))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(entities[1], V(2))], CancellationToken.None);

        Assert.Equal(599, await store.CountAsync("items", CancellationToken.None));
        var digest = Assert.Single(await store.ReadDigestsAsync("items", [entities[0].Key.Id], CancellationToken.None));
        Assert.Equal(V(2), digest.Version);
        Assert.Equal(ProjectionHash.Compute(entities[0], StoreKind.Vector), digest.ProjectionHash);

        var scanned = new List<EntityDigest>();
        await foreach (var d in store.ScanDigestsAsync("items", BucketRange.ForPrefix(1, 0), CancellationToken.None))
        {
            scanned.Add(d);
        }

        Assert.Equal(entities.Where((_, i) => i != 1).Count(e => KeyHash.Bucket(e.Key) < 0x8000_0000u), scanned.Count);
        var hit = Assert.Single(await store.SearchAsync("items", new float[] { 600, 1, 0, -1 }, 1, CancellationToken.None));
        Assert.Equal("k599", hit.Key.Id);

        // Versions above 2^53 are matched exactly by the update filter (an integer match, not a double range).
        var big = new EntityKey("items", "big");
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(big, "{}", new float[] { 1, 0, 0, 0 }), new HlcTimestamp(long.MaxValue - 9))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(big, "{}", new float[] { 0, 1, 0, 0 }), new HlcTimestamp(long.MaxValue - 8))], CancellationToken.None);
        Assert.Equal(new HlcTimestamp(long.MaxValue - 8), Assert.Single(await store.ReadDigestsAsync("items", ["big"], CancellationToken.None)).Version);

        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "m"), "{}", new float[] { 1, 0, 0, 0 }), V(5)).WithOrigin("live-mig")], CancellationToken.None);
        Assert.Equal(1, await store.RemoveByOriginAsync("items", "live-mig", CancellationToken.None));
        Assert.Equal(600, await store.CountAsync("items", CancellationToken.None));
    }
}
