using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb;
using CrossStoreSync.SurrealDb.Stores;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Batched upsert throughput into the real SurrealDB 3 engine behind the test host (eng/surrealdb-host; run
/// <c>npm ci</c> there first): 1,000 entities (1 KB document, 384-d vector, 2 edges) in batches of 500 through
/// <see cref="SurrealDbDocumentStore.ApplyAsync"/>. Baseline: the same rows (same record layout, same table
/// definition and indexes) sent as raw <c>/sql</c> transactions by a plain HttpClient loop that pastes the JSON into
/// the query text, with no version guard and no escaping (and, like the adapter, <c>RETURN NONE</c>). Every invocation
/// writes a newer version, so each upsert really replaces its record.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class SurrealDbUpsertBenchmarks
{
    private const int Entities = 1000;
    private const int BatchSize = 500;
    private SyncEntity[] _data = [];
    private Process? _host;
    private HttpClient? _http;
    private SurrealDbDocumentStore? _store;
    private SurrealDbOptions? _options;
    private long _version = new HlcTimestamp(1_700_000_000_000, 0, 1).Value;

    [GlobalSetup]
    public async Task Setup()
    {
        _data = BenchmarkData.Entities(Entities);
        (_host, var endpoint) = await StartHostAsync();
        _http = new HttpClient();
        _options = new SurrealDbOptions { Endpoint = endpoint, Namespace = "bench", Database = "upsert" };
        _store = new SurrealDbDocumentStore(_options, _http);
        await _store.InitializeAsync([new CollectionDefinition(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine)], CancellationToken.None);
        await PostAsync("DEFINE TABLE IF NOT EXISTS raw_items SCHEMALESS; DEFINE INDEX IF NOT EXISTS css_bucket ON TABLE raw_items FIELDS _sync.bucket; DEFINE INDEX IF NOT EXISTS css_pos ON TABLE raw_items FIELDS _sync.pos;");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _http?.Dispose();
        if (_host is { HasExited: false })
        {
            _host.StandardInput.Close();
            if (!_host.WaitForExit(10_000))
            {
                _host.Kill(entireProcessTree: true);
            }
        }

        _host?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Entities, Description = "raw /sql batches, plain HttpClient loop (same rows)")]
    public async Task<int> RawSql()
    {
        var version = Interlocked.Increment(ref _version);
        for (var start = 0; start < Entities; start += BatchSize)
        {
            var sql = new StringBuilder(BatchSize * 8192).Append("BEGIN TRANSACTION;\n");
            for (var i = start; i < start + BatchSize; i++)
            {
                var e = _data[i];
                var bucket = Hashing.KeyHash.Bucket(e.Key);
                sql.Append("UPSERT type::record('raw_items', '").Append(e.Key.Id).Append("') CONTENT {data:").Append(e.DocumentText).Append(",vector:[");
                var vector = e.Vector.Span;
                for (var d = 0; d < vector.Length; d++)
                {
                    sql.Append(d == 0 ? string.Empty : ",").Append(vector[d].ToString("R", CultureInfo.InvariantCulture));
                }

                sql.Append("],edges:[");
                for (var j = 0; j < e.Edges.Count; j++)
                {
                    sql.Append(j == 0 ? "{type:'" : ",{type:'").Append(e.Edges[j].Type).Append("',collection:'").Append(e.Edges[j].Target.Collection).Append("',id:'").Append(e.Edges[j].Target.Id).Append("'}");
                }

                sql.Append("],_sync:{version:").Append(version).Append(",hash:'").Append(Hashing.EntityEncoding.ComputeContentHash(e).ToString("x32", CultureInfo.InvariantCulture))
                    .Append("',bucket:").Append(bucket).Append(",pos:'").Append(bucket.ToString("x8", CultureInfo.InvariantCulture)).Append(e.Key.Id)
                    .Append("',deleted:false,doc:").Append(JsonSerializer.Serialize(e.DocumentText)).Append("}} RETURN NONE;\n");
            }

            await PostAsync(sql.Append("COMMIT TRANSACTION;").ToString());
        }

        return Entities;
    }

    [Benchmark(OperationsPerInvoke = Entities, Description = "SurrealDbDocumentStore.ApplyAsync (guarded, escaped)")]
    public async Task<int> Adapter()
    {
        var version = new HlcTimestamp(Interlocked.Increment(ref _version));
        for (var start = 0; start < Entities; start += BatchSize)
        {
            var changes = new EntityChange[BatchSize];
            for (var i = 0; i < BatchSize; i++)
            {
                changes[i] = EntityChange.Upsert(_data[start + i], version);
            }

            await _store!.ApplyAsync(changes, CancellationToken.None);
        }

        return Entities;
    }

    private async Task PostAsync(string sql)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_options!.Endpoint!, "sql")) { Content = new StringContent(sql, Encoding.UTF8, "text/plain") };
        request.Headers.Add("Surreal-NS", _options.Namespace);
        request.Headers.Add("Surreal-DB", _options.Database);
        request.Headers.Add("Accept", "application/json");
        using var response = await _http!.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode || body.Contains("\"status\":\"ERR\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Raw /sql failed: {body[..Math.Min(body.Length, 500)]}");
        }
    }

    private static async Task<(Process Host, Uri Endpoint)> StartHostAsync()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CrossStoreSync.sln")))
        {
            dir = dir.Parent;
        }

        var hostDir = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("CrossStoreSync.sln not found."), "eng", "surrealdb-host");
        var process = Process.Start(new ProcessStartInfo("node", ["server.mjs", "--port", "0"])
        {
            WorkingDirectory = hostDir,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("node did not start.");
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line is null || !line.StartsWith("listening ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The SurrealDB host did not start (run `npm ci` in {hostDir}): {line}");
        }

        return (process, new Uri(line["listening ".Length..].Trim() + "/"));
    }
}
