using System.Globalization;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Neo4j;
using CrossStoreSync.Qdrant;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Qdrant.Client;

namespace RagMemory;

/// <summary>
/// An AI-memory app in miniature: text chunks kept in SurrealDB (source of truth), their embeddings in Qdrant and their
/// relationships in Neo4j, all through one <c>AddCrossStoreSync</c>. Settings come from appsettings.json, then
/// environment variables (<c>RagMemory__Qdrant__Address=...</c>), then the command line
/// (<c>--RagMemory:Qdrant:Address=...</c>).
/// </summary>
public static class RagMemoryApp
{
    public const string Chunks = "chunks";
    public const int Dimension = 64;

    /// <summary>Exit codes: 0 every store agrees, 1 they disagree or sync did not finish, 2 a server is unreachable.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var settings = builder.Configuration.GetSection("RagMemory");
        var surreal = settings.GetSection("SurrealDb");
        var qdrant = settings.GetSection("Qdrant");
        var neo4j = settings.GetSection("Neo4j");

        // Say plainly which server is missing before wiring anything to it.
        var timeout = settings.GetValue("ProbeTimeout", TimeSpan.FromSeconds(3));
        var probes = await Task.WhenAll(
            ProbeAsync("SurrealDB (source of truth)", surreal["Endpoint"], "health", timeout),
            ProbeQdrantAsync("Qdrant (vectors)", qdrant["Address"], timeout),
            ProbeAsync("Neo4j (graph)", neo4j["BaseAddress"], string.Empty, timeout));
        foreach (var probe in probes)
        {
            output.WriteLine($"{probe.Name,-30} {probe.Address,-32} {(probe.Error is null ? "reachable" : "UNREACHABLE: " + probe.Error)}");
        }

        if (probes.Any(p => p.Error is not null))
        {
            output.WriteLine($"Cannot run: {string.Join(", ", probes.Where(p => p.Error is not null).Select(p => p.Name))} unreachable. Start them or point the settings at real servers (samples/RagMemory/README.md).");
            return 2;
        }

        var dataDirectory = Path.GetFullPath(settings["DataDirectory"] ?? "rag-memory-data");
        builder.Services
            .AddCrossStoreSync(o =>
            {
                o.AddCollection(Chunks, Dimension);
                o.AddCollection("topics");
            })
            .UseSqlite(o =>
            {
                // The change log, its cursors and dead letters stay in an embedded file; the stores are the servers.
                o.DirectoryPath = dataDirectory;
                o.VectorStoreName = null;
                o.GraphStoreName = null;
            })
            .AddSurrealDbDocumentStore(o => surreal.Bind(o))
            .AddQdrantVectorStore(o => qdrant.Bind(o))
            .AddNeo4jGraphStore(o => neo4j.Bind(o));

        using var host = builder.Build();
        await host.StartAsync().ConfigureAwait(false);
        try
        {
            return await RunAsync(host.Services, output).ConfigureAwait(false);
        }
        finally
        {
            await host.StopAsync().ConfigureAwait(false);
        }
    }

    private static async Task<int> RunAsync(IServiceProvider services, TextWriter output)
    {
        var sync = services.GetRequiredService<ISyncManager>();
        var chunks = Corpus.Chunks();
        var ticket = await sync.WriteBatchAsync(chunks).ConfigureAwait(false);
        var outcome = await sync.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        output.WriteLine($"Ingested {chunks.Count} chunks into SurrealDB; Qdrant and Neo4j: {outcome}.");
        if (outcome != SyncWaitOutcome.Synced)
        {
            foreach (var stats in await sync.GetStatisticsAsync().ConfigureAwait(false))
            {
                output.WriteLine($"  {stats.Store}: lag {stats.LagChanges} changes, {stats.DeadLetters} dead letters{(stats.Faulted ? ", faulted" : string.Empty)}");
            }

            return 1;
        }

        var report = await services.GetRequiredService<IConsistencyChecker>().CheckAsync(Chunks, new ConsistencyCheckOptions { Deep = true }).ConfigureAwait(false);
        output.WriteLine($"Deep consistency check of {report.SourceEntities} chunks:");
        foreach (var store in report.Stores)
        {
            output.WriteLine($"  {store.Store}: {store.Consistent} consistent, {store.Missing} missing, {store.Stale} stale, {store.Corrupted} corrupted, {store.Orphaned} orphaned");
        }

        const string Question = "how does a replica catch up after an outage";
        var vectors = services.GetRequiredKeyedService<QdrantVectorStore>("qdrant");
        var hits = await vectors.SearchAsync(Chunks, Corpus.Embed(Question), 3, CancellationToken.None).ConfigureAwait(false);
        output.WriteLine($"Nearest chunks to \"{Question}\":");
        foreach (var hit in hits)
        {
            var chunk = chunks.First(c => c.Key == hit.Key);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {hit.Key.Id} ({hit.Score:0.000}) {Corpus.TextOf(chunk)}"));
        }

        var graph = services.GetRequiredKeyedService<Neo4jGraphStore>("neo4j");
        var center = hits.Count > 0 ? hits[0].Key : chunks[0].Key;
        var neighbours = await graph.GetNeighborsAsync(center, null, EdgeDirection.Both, CancellationToken.None).ConfigureAwait(false);
        output.WriteLine($"Graph neighbourhood of {center.Id}:");
        foreach (var n in neighbours.OrderBy(n => n.EdgeType, StringComparer.Ordinal).ThenBy(n => n.Key.Id, StringComparer.Ordinal))
        {
            output.WriteLine($"  {(n.Direction == EdgeDirection.Outgoing ? "->" : "<-")} {n.EdgeType} {n.Key}{(n.Exists ? string.Empty : " (placeholder)")}");
        }

        if (report.IsConsistent)
        {
            output.WriteLine("Every store agrees with the source of truth.");
            return 0;
        }

        output.WriteLine("Stores disagree with the source of truth.");
        return 1;
    }

    /// <summary>Qdrant's gRPC health check (it needs no API key): an HTTP/1.1 request cannot tell whether a gRPC port answers.</summary>
    private static async Task<(string Name, string Address, string? Error)> ProbeQdrantAsync(string name, string? address, TimeSpan timeout)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            return (name, address ?? "(not set)", "no valid URL configured");
        }

        using var client = new QdrantClient(uri);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await client.HealthAsync(deadline.Token).ConfigureAwait(false);
            return (name, uri.ToString(), null);
        }
        catch (Grpc.Core.RpcException ex)
        {
            return (name, uri.ToString(), deadline.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.#} s"
                : $"{ex.StatusCode}: {ex.Status.DebugException?.Message ?? ex.Status.Detail}");
        }
    }

    private static async Task<(string Name, string Address, string? Error)> ProbeAsync(string name, string? address, string path, TimeSpan timeout)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            return (name, address ?? "(not set)", "no valid URL configured");
        }

        using var http = new HttpClient { Timeout = timeout };
        try
        {
            // Any HTTP answer below 500 (401 included) means a server is listening there.
            using var response = await http.GetAsync(new Uri(uri, path)).ConfigureAwait(false);
            return (name, uri.ToString(), (int)response.StatusCode >= 500 ? $"HTTP {(int)response.StatusCode}" : null);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return (name, uri.ToString(), ex is TaskCanceledException ? $"no answer within {timeout.TotalSeconds:0.#} s" : ex.Message);
        }
    }
}

/// <summary>A small fixed corpus with deterministic toy embeddings (hashed character trigrams), so no model is needed.</summary>
public static class Corpus
{
    private static readonly (string Topic, string Text)[] Texts =
    [
        ("sync", "every write goes to the change log before any store"),
        ("sync", "a replica that was down catches up from its durable cursor after the outage"),
        ("sync", "changes are applied in per key order with a version guard"),
        ("sync", "a rejected change is dead lettered and can be replayed later"),
        ("consistency", "merkle trees compare the stores bucket by bucket"),
        ("consistency", "a bloom filter bounds the memory of a check"),
        ("consistency", "sampling estimates drift with a confidence interval"),
        ("consistency", "repair re-projects the source of truth through the log"),
        ("memory", "the assistant remembers the user prefers short answers"),
        ("memory", "the user is planning a trip to lisbon in may"),
        ("memory", "the user's project uses postgres and qdrant"),
        ("memory", "the user asked about backfilling a new vector index"),
        ("migration", "a backfill streams the source in bucket ranges"),
        ("migration", "checkpoints let a killed migration resume"),
        ("migration", "re-embedding writes a new collection and switches after verifying"),
        ("migration", "batch sizes adapt to the target latency"),
    ];

    public static IReadOnlyList<SyncEntity> Chunks()
    {
        var result = new List<SyncEntity>(Texts.Length);
        for (var i = 0; i < Texts.Length; i++)
        {
            var (topic, text) = Texts[i];
            var id = "chunk-" + i.ToString("D2", CultureInfo.InvariantCulture);
            var edges = new List<SyncEdge> { new("ABOUT", new EntityKey("topics", topic)) };
            if (i + 1 < Texts.Length && Texts[i + 1].Topic == topic)
            {
                edges.Add(new SyncEdge("NEXT", new EntityKey(RagMemoryApp.Chunks, "chunk-" + (i + 1).ToString("D2", CultureInfo.InvariantCulture))));
            }

            var json = $$"""{"text":"{{text}}","topic":"{{topic}}"}""";
            result.Add(new SyncEntity(new EntityKey(RagMemoryApp.Chunks, id), Encoding.UTF8.GetBytes(json), Embed(text), edges));
        }

        return result;
    }

    public static string TextOf(SyncEntity chunk)
    {
        var json = chunk.DocumentText;
        var start = json.IndexOf("\"text\":\"", StringComparison.Ordinal) + 8;
        return json[start..json.IndexOf('"', start)];
    }

    public static float[] Embed(string text)
    {
        var vector = new float[RagMemoryApp.Dimension];
        var padded = " " + text.ToLowerInvariant() + " ";
        for (var i = 0; i + 3 <= padded.Length; i++)
        {
            var h = 2166136261u;
            for (var j = i; j < i + 3; j++)
            {
                h = (h ^ padded[j]) * 16777619u;
            }

            vector[h % RagMemoryApp.Dimension] += 1;
        }

        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] /= norm;
        }

        return vector;
    }
}
