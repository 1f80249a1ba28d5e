using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Backfill throughput SQLite → SQLite: a source of N entities (1 KB document, 384-d vector, 2 edges) copied into an
/// empty vector store and an empty graph store, each by its own migration (2 workers each). Baseline: a raw copy of
/// the same rows into the same tables — one plain SQLite reader per target streaming the source in the same
/// (bucket, id) order, with batched insert transactions — also both targets in parallel. Entities/s = N / Mean.
/// Each case runs in its own process; its peak working set is printed as "// PeakWorkingSetMB".
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class MigrationBackfillBenchmarks
{
    private static readonly CollectionDefinition[] Collections = [new(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine), new("topics", null, VectorDistance.Cosine)];
    private string _source = "";
    private string _target = "";

    [Params(100_000, 1_000_000)]
    public int Entities { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        // The seeded source is kept between runs: writing a million 2.5 KB entities takes longer than a measurement.
        _source = Path.Combine(Path.GetTempPath(), "css-bench-migration-" + Entities.ToString(CultureInfo.InvariantCulture));
        var marker = Path.Combine(_source, "seeded");
        if (!File.Exists(marker))
        {
            if (Directory.Exists(_source))
            {
                Directory.Delete(_source, true);
            }

            Directory.CreateDirectory(_source);
            await using var log = new SqliteChangeLog(Path.Combine(_source, "source.db"), durable: false);
            await log.InitializeAsync(CancellationToken.None);
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
            for (var start = 0; start < Entities; start += 5_000)
            {
                var batch = BenchmarkData.Range(start, Math.Min(5_000, Entities - start), Entities)
                    .Select((e, i) => EntityChange.Upsert(e, new HlcTimestamp(now + ((start + i) >> 12), (start + i) & 4095, 1)))
                    .ToArray();
                await log.AppendAndApplyAsync(batch, CancellationToken.None);
            }

            await File.WriteAllTextAsync(marker, "ok");
        }

        SqliteConnection.ClearAllPools();
    }

    [IterationSetup]
    public void CreateTarget() => _target = Directory.CreateTempSubdirectory("css-bench-migration-target").FullName;

    [IterationCleanup]
    public void DeleteTarget()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_target, true);
    }

    [GlobalCleanup]
    public void Cleanup() =>
        Console.WriteLine($"// PeakWorkingSetMB: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024)} (Entities = {Entities})");

    [Benchmark(Baseline = true, Description = "raw copy of the same rows (2 targets in parallel)")]
    public async Task<long> RawCopy()
    {
        await using (var v = new SqliteVectorStore(Path.Combine(_target, "vectors.db")))
        {
            await v.InitializeAsync(Collections, CancellationToken.None);
        }

        await using (var g = new SqliteGraphStore(Path.Combine(_target, "graph.db")))
        {
            await g.InitializeAsync(Collections, CancellationToken.None);
        }

        SqliteConnection.ClearAllPools();
        var copied = await Task.WhenAll(Task.Run(CopyVectors), Task.Run(CopyGraph));
        return copied[0] + copied[1];
    }

    [Benchmark(Description = "migration manager (2 migrations × 2 workers)")]
    public async Task<long> Migration()
    {
        await using var host = EngineHost.Start(
            b =>
            {
                b.Services.AddSingleton(_ => new SqliteChangeLog(Path.Combine(_source, "source.db"), durable: false));
                b.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
                 .UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents)
                 .AddReplica("v", _ => new SqliteVectorStore(Path.Combine(_target, "vectors.db")))
                 .AddReplica("g", _ => new SqliteGraphStore(Path.Combine(_target, "graph.db")));
            },
            o =>
            {
                o.ReplicasAwaitingBackfill.Add("vectors");
                o.ReplicasAwaitingBackfill.Add("graph");
            });
        var migrations = host.Services.GetRequiredService<IMigrationManager>();

        // New ids every iteration: the checkpoints live in the shared source file, and a finished migration does not run again.
        var run = Guid.NewGuid().ToString("N");
        var reports = await Task.WhenAll(
            migrations.RunAsync(new MigrationRequest { Id = "bench-v-" + run, Target = "vectors", Workers = 2, Verify = false }),
            migrations.RunAsync(new MigrationRequest { Id = "bench-g-" + run, Target = "graph", Workers = 2, Verify = false }));
        var written = reports[0].Written + reports[1].Written;
        return written == 2L * Entities ? written : throw new InvalidOperationException($"Migrated {written} entities, expected {2L * Entities}.");
    }

    private const string SourceRows = "SELECT id, version, hash, bucket, vector, edges FROM documents WHERE collection = 'items' AND deleted = 0 ORDER BY bucket, id";

    private long CopyVectors()
    {
        using var source = Open(Path.Combine(_source, "source.db"));
        using var target = Open(Path.Combine(_target, "vectors.db"));
        using var read = source.CreateCommand();
        read.CommandText = SourceRows;
        using var reader = read.ExecuteReader();
        long count = 0;
        while (true)
        {
            using var tx = target.BeginTransaction();
            using var insert = target.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = """
                INSERT INTO vectors (collection, id, version, hash, bucket, deleted, vector) VALUES ('items', $id, $v, $h, $b, 0, $vec)
                ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, hash = excluded.hash, vector = excluded.vector
                WHERE excluded.version > vectors.version
                """;
            var p = new[] { insert.Parameters.Add("$id", SqliteType.Text), insert.Parameters.Add("$v", SqliteType.Integer), insert.Parameters.Add("$h", SqliteType.Blob), insert.Parameters.Add("$b", SqliteType.Integer), insert.Parameters.Add("$vec", SqliteType.Blob) };
            var batch = 0;
            while (batch < 1000 && reader.Read())
            {
                p[0].Value = reader.GetString(0);
                p[1].Value = reader.GetInt64(1);
                p[2].Value = reader[2];
                p[3].Value = reader.GetInt64(3);
                p[4].Value = reader[4];
                insert.ExecuteNonQuery();
                batch++;
            }

            tx.Commit();
            count += batch;
            if (batch < 1000)
            {
                return count;
            }
        }
    }

    private long CopyGraph()
    {
        using var source = Open(Path.Combine(_source, "source.db"));
        using var target = Open(Path.Combine(_target, "graph.db"));
        using var read = source.CreateCommand();
        read.CommandText = SourceRows;
        using var reader = read.ExecuteReader();
        long count = 0;
        while (true)
        {
            using var tx = target.BeginTransaction();
            using var node = target.CreateCommand();
            node.Transaction = tx;
            node.CommandText = """
                INSERT INTO nodes (collection, id, version, hash, bucket, deleted) VALUES ('items', $id, $v, $h, $b, 0)
                ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, hash = excluded.hash
                WHERE excluded.version > nodes.version
                """;
            var p = new[] { node.Parameters.Add("$id", SqliteType.Text), node.Parameters.Add("$v", SqliteType.Integer), node.Parameters.Add("$h", SqliteType.Blob), node.Parameters.Add("$b", SqliteType.Integer) };
            using var edge = target.CreateCommand();
            edge.Transaction = tx;
            edge.CommandText = "INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id, properties) VALUES ('items', $b, $id, $t, $dc, $did, NULL)";
            var e = new[] { edge.Parameters.Add("$b", SqliteType.Integer), edge.Parameters.Add("$id", SqliteType.Text), edge.Parameters.Add("$t", SqliteType.Text), edge.Parameters.Add("$dc", SqliteType.Text), edge.Parameters.Add("$did", SqliteType.Text) };
            var batch = 0;
            while (batch < 1000 && reader.Read())
            {
                var id = reader.GetString(0);
                var bucket = reader.GetInt64(3);
                p[0].Value = id;
                p[1].Value = reader.GetInt64(1);
                p[2].Value = reader[2];
                p[3].Value = bucket;
                node.ExecuteNonQuery();
                foreach (var edgeRow in SqliteCodec.BlobToEdges(reader.IsDBNull(5) ? null : (byte[])reader[5]))
                {
                    e[0].Value = bucket;
                    e[1].Value = id;
                    e[2].Value = edgeRow.Type;
                    e[3].Value = edgeRow.Target.Collection;
                    e[4].Value = edgeRow.Target.Id;
                    edge.ExecuteNonQuery();
                }

                batch++;
            }

            tx.Commit();
            count += batch;
            if (batch < 1000)
            {
                return count;
            }
        }
    }

    private static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection($"Data Source={path}");
        connection.Open();
        foreach (var pragma in new[] { "PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", "PRAGMA busy_timeout=30000;" })
        {
            using var command = connection.CreateCommand();
            command.CommandText = pragma;
            command.ExecuteNonQuery();
        }

        return connection;
    }
}
