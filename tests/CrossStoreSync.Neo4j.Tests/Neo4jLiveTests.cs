using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>Runs only when <c>NEO4J_URL</c> is set (with <c>NEO4J_USER</c>/<c>NEO4J_PASSWORD</c>, and <c>NEO4J_DATABASE</c> if not <c>neo4j</c>).</summary>
public sealed class Neo4jLiveFactAttribute : FactAttribute
{
    public Neo4jLiveFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NEO4J_URL")))
        {
            Skip = "NEO4J_URL is not set: no Neo4j server to test against (start Neo4j 5.26+ with the Query API, e.g. http://localhost:7474, and set NEO4J_URL, NEO4J_USER, NEO4J_PASSWORD).";
        }
    }
}

/// <summary>The adapter against a real Neo4j server, under labels of its own that it removes afterwards.</summary>
public sealed class Neo4jLiveTests : IAsyncLifetime
{
    private readonly TestHttpClientFactory _clients = new();
    private readonly string _items = "LiveItems" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _people = "LivePeople" + Guid.NewGuid().ToString("N")[..8];
    private Neo4jGraphStoreOptions? _options;

    public Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("NEO4J_URL") is { Length: > 0 } url)
        {
            _options = new Neo4jGraphStoreOptions
            {
                BaseAddress = new Uri(url),
                Database = Environment.GetEnvironmentVariable("NEO4J_DATABASE") is { Length: > 0 } db ? db : "neo4j",
                User = Environment.GetEnvironmentVariable("NEO4J_USER"),
                Password = Environment.GetEnvironmentVariable("NEO4J_PASSWORD"),
            };
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_options is not null)
        {
            // Test cleanup only; the adapter itself never deletes labels or schema.
            foreach (var label in new[] { _items, _people })
            {
                await RawAsync($"MATCH (n:`{label}`) DETACH DELETE n");
                await RawAsync($"DROP CONSTRAINT css_{label}_id IF EXISTS");
                await RawAsync($"DROP INDEX css_{label}_bucket IF EXISTS");
            }
        }

        _clients.Dispose();
    }

    private async Task RawAsync(string statement)
    {
        using var client = _clients.CreateClient("cleanup");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(_options!.BaseAddress!.AbsoluteUri.TrimEnd('/') + "/"), $"db/{_options.Database}/query/v2"))
        {
            Content = new StringContent(JsonSerializer.Serialize(new { statement }), Encoding.UTF8, "application/json"),
        };
        if (_options.User is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_options.User + ":" + _options.Password)));
        }

        using var _ = await client.SendAsync(request);
    }

    private static HlcTimestamp V(long ms) => new(1_700_000_000_000 + ms, 0, 1);

    [Neo4jLiveFact]
    public async Task Round_trip_against_a_real_server()
    {
        var store = new Neo4jGraphStore(_clients, _options!);
        CollectionDefinition[] collections = [new(_items, 4, VectorDistance.Cosine), new(_people, null, VectorDistance.Cosine)];
        await store.InitializeAsync(collections, CancellationToken.None);
        await store.InitializeAsync(collections, CancellationToken.None);

        var props = Encoding.UTF8.GetBytes("{\"w\":1}");
        var entities = Enumerable.Range(0, 700).Select(i => SyncEntity.FromJson(new EntityKey(_items, "k" + i), "{}", new float[] { 1, 0.5f, 0, i },
            [new SyncEdge("KNOWS", new EntityKey(_people, "p" + (i % 7)), props), new SyncEdge("NEXT", new EntityKey(_items, "k" + (i + 1)))])).ToArray();
        await store.ApplyAsync(entities.Select(e => EntityChange.Upsert(e, V(2))).ToArray(), CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(entities[0].Key, "{}"), V(1))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Delete(entities[1].Key, V(3))], CancellationToken.None);

        Assert.Equal(699, await store.CountAsync(_items, CancellationToken.None));
        Assert.Equal(0, await store.CountAsync(_people, CancellationToken.None));
        var digest = Assert.Single(await store.ReadDigestsAsync(_items, [entities[0].Key.Id], CancellationToken.None));
        Assert.Equal(V(2), digest.Version);
        Assert.Equal(ProjectionHash.Compute(entities[0], StoreKind.Graph), digest.ProjectionHash);

        var scanned = 0;
        await foreach (var _ in store.ScanDigestsAsync(_items, BucketRange.All, CancellationToken.None))
        {
            scanned++;
        }

        Assert.Equal(699, scanned);
        var neighbours = await store.GetNeighborsAsync(entities[0].Key, null, EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal([("KNOWS", false), ("NEXT", false)], neighbours.Select(n => (n.EdgeType, n.Exists)).Order().ToArray());
        Assert.Equal(100, (await store.GetNeighborsAsync(new EntityKey(_people, "p0"), "KNOWS", EdgeDirection.Incoming, CancellationToken.None)).Count);

        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(new EntityKey(_items, "m"), "{}"), V(5)).WithOrigin("live-mig")], CancellationToken.None);
        Assert.Equal(1, await store.RemoveByOriginAsync(_items, "live-mig", CancellationToken.None));
        Assert.Equal(699, await store.CountAsync(_items, CancellationToken.None));
        Assert.NotEmpty(store.Bookmarks);
    }
}
