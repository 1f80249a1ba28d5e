using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>Runs only when <c>QDRANT_URL</c> is set (and <c>QDRANT_API_KEY</c> if the server needs one).</summary>
public sealed class QdrantLiveFactAttribute : FactAttribute
{
    public QdrantLiveFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("QDRANT_URL")))
        {
            Skip = "QDRANT_URL is not set: no Qdrant server to test against (start one, e.g. on http://localhost:6333, and set QDRANT_URL).";
        }
    }
}

/// <summary>The adapter against a real Qdrant server, in collections of its own that it deletes afterwards.</summary>
public sealed class QdrantLiveTests : IAsyncLifetime
{
    private readonly TestHttpClientFactory _clients = new();
    private readonly string _prefix = "css_live_" + Guid.NewGuid().ToString("N")[..8] + "_";
    private QdrantVectorStore? _store;

    public Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("QDRANT_URL") is { Length: > 0 } url)
        {
            _store = new QdrantVectorStore(_clients, new QdrantVectorStoreOptions
            {
                BaseAddress = new Uri(url),
                ApiKey = Environment.GetEnvironmentVariable("QDRANT_API_KEY") is { Length: > 0 } key ? key : null,
                CollectionPrefix = _prefix,
            });
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_store is not null && Environment.GetEnvironmentVariable("QDRANT_URL") is { } url)
        {
            using var client = _clients.CreateClient("cleanup");
            foreach (var collection in new[] { "items", "other" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Delete, new Uri(new Uri(url.TrimEnd('/') + "/"), "collections/" + _prefix + collection));
                if (Environment.GetEnvironmentVariable("QDRANT_API_KEY") is { Length: > 0 } key)
                {
                    request.Headers.Add("api-key", key);
                }

                using var _ = await client.SendAsync(request);
            }
        }

        _clients.Dispose();
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

        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "m"), "{}", new float[] { 1, 0, 0, 0 }), V(5)).WithOrigin("live-mig")], CancellationToken.None);
        Assert.Equal(1, await store.RemoveByOriginAsync("items", "live-mig", CancellationToken.None));
        Assert.Equal(599, await store.CountAsync("items", CancellationToken.None));
    }
}
