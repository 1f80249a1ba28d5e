using System.Net.Http.Headers;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Stores;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>Runs only when <c>SURREALDB_URL</c> is set; skipped otherwise with the reason.</summary>
public sealed class LiveSurrealFactAttribute : FactAttribute
{
    public LiveSurrealFactAttribute()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("SURREALDB_URL")))
        {
            Skip = "Live SurrealDB tests need SURREALDB_URL (for example http://127.0.0.1:8000 of `surreal start --user root --pass root`); SURREALDB_USER/SURREALDB_PASS default to root/root.";
        }
    }
}

/// <summary>The store against a real <c>surreal start</c> server (2.x or 3.x), in a namespace and database of its own.</summary>
public sealed class LiveServerTests : IDisposable
{
    private static readonly HlcTimestamp V1 = new(1_700_000_000_000, 0, 1);
    private readonly HttpClient _http = new();

    public void Dispose() => _http.Dispose();

    private static SurrealDbOptions Options(string? password = null) => new()
    {
        Endpoint = new Uri(Environment.GetEnvironmentVariable("SURREALDB_URL")!),
        Namespace = "crossstoresync_tests",
        Database = "live_" + Guid.NewGuid().ToString("N"),
        Username = Environment.GetEnvironmentVariable("SURREALDB_USER") ?? "root",
        Password = password ?? Environment.GetEnvironmentVariable("SURREALDB_PASS") ?? "root",
    };

    private async Task<SurrealDbDocumentStore> NewStoreAsync()
    {
        var options = Options();

        // A real server may run in strict mode, where the namespace and database must be defined first.
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Endpoint!, "sql"))
        {
            Content = new StringContent($"DEFINE NAMESPACE IF NOT EXISTS {options.Namespace}; USE NS {options.Namespace}; DEFINE DATABASE IF NOT EXISTS {options.Database};", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{options.Password}")));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await _http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());

        var store = new SurrealDbDocumentStore(options, _http);
        await store.InitializeAsync([new CollectionDefinition("items", 2, VectorDistance.Cosine)], CancellationToken.None);
        return store;
    }

    [LiveSurrealFact]
    public async Task Unusual_ids_and_look_alike_strings_round_trip_on_a_real_server()
    {
        var store = await NewStoreAsync();
        Assert.NotNull(store.ServerMajorVersion);
        string[] ids = ["with-dash", "a:b", "with space", "ünïcødé-日本語-🙂", "0123456789", "tick`⟩"];
        var entities = ids.Select(id => SyncEntity.FromJson(new EntityKey("items", id), """{"ref":"items:x","when":"2024-01-01T00:00:00Z","uuid":"0190bd45-1d5b-7000-8000-000000000000","n":2.50}""", new float[] { 0.1f, 2 })).ToArray();
        await store.ApplyAsync(entities.Select(e => EntityChange.Upsert(e, V1)).ToArray(), CancellationToken.None);

        foreach (var entity in entities)
        {
            var read = await store.ReadAsync(entity.Key, CancellationToken.None);
            Assert.Equal(entity.Document.ToArray(), read!.Entity.Document.ToArray());
            Assert.Equal(entity.Vector.ToArray(), read.Entity.Vector.ToArray());
        }

        var digests = await store.ReadDigestsAsync("items", ids, CancellationToken.None);
        Assert.Equal(ids.Order(StringComparer.Ordinal), digests.Select(d => d.Key.Id).Order(StringComparer.Ordinal));
        Assert.All(digests, d => Assert.Equal(ProjectionHash.Compute(entities.Single(e => e.Key == d.Key), StoreKind.Document), d.ProjectionHash));
    }

    [LiveSurrealFact]
    public async Task The_version_guard_and_tombstones_hold_on_a_real_server()
    {
        var store = await NewStoreAsync();
        var key = new EntityKey("items", "k");
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, """{"v":2}"""), new HlcTimestamp(V1.Value + 2))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, """{"v":1}"""), V1)], CancellationToken.None);
        Assert.Equal("""{"v":2}""", (await store.ReadAsync(key, CancellationToken.None))!.Entity.DocumentText);

        await store.ApplyAsync([EntityChange.Delete(key, new HlcTimestamp(V1.Value + 3))], CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(SyncEntity.FromJson(key, """{"v":1}"""), V1)], CancellationToken.None);
        Assert.Null(await store.ReadAsync(key, CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
    }

    [LiveSurrealFact]
    public async Task Wrong_credentials_are_a_permanent_error()
    {
        var store = new SurrealDbDocumentStore(Options(password: "wrong-" + Guid.NewGuid().ToString("N")), _http);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));

        Assert.False(error.IsTransient);
    }
}
