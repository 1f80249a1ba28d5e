using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Log;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Outbox relay throughput: N changes already committed to the PostgreSQL outbox (document table + change log, written
/// together) are relayed to SQLite vector + graph replicas by 1 or 2 workers (engines with their own worker ids sharing
/// the log through partition leases), until every store has applied the head of the log. Baseline, same run, same rows:
/// a raw relay — N rows in a plain outbox table, consumed by the same number of loops of
/// <c>DELETE … WHERE seq IN (SELECT … ORDER BY seq LIMIT 512 FOR UPDATE SKIP LOCKED) RETURNING payload</c>, each batch
/// decoded and written to the same SQLite tables with plain batched inserts, then committed. Changes/s = N / Mean.
/// The PostgreSQL server (eng/postgres.sh, or CSS_PG_CONNECTION) runs on the same 2-core machine.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class PostgresOutboxBenchmarks
{
    private const int Changes = 50_000;
    private const int Partitions = 16;
    private const string Database = "css_bench_outbox";
    private static readonly CollectionDefinition[] Collections = [new("memories", 64, VectorDistance.Cosine)];
    private string _admin = "";
    private string _connectionString = "";
    private string _directory = "";
    private NpgsqlDataSource _dataSource = null!;
    private long _head;

    [Params(1, 2)]
    public int Workers { get; set; }

    [GlobalSetup]
    public async Task GlobalSetup()
    {
        _admin = Environment.GetEnvironmentVariable("CSS_PG_CONNECTION") is { Length: > 0 } configured ? configured : "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
        await using (var admin = new NpgsqlConnection(_admin))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        _connectionString = new NpgsqlConnectionStringBuilder(_admin) { Database = Database, MaxPoolSize = 50 }.ConnectionString;
        _dataSource = NpgsqlDataSource.Create(_connectionString);
    }

    [GlobalCleanup]
    public async Task GlobalCleanup() => await _dataSource.DisposeAsync();

    /// <summary>A memory item of an AI-memory app: a ~300-byte JSON document, a 64-dimension embedding, 2 edges.</summary>
    internal static SyncEntity Memory(int i)
    {
        var vector = new float[64];
        for (var d = 0; d < vector.Length; d++)
        {
            vector[d] = ((i * 31) + (d * 7)) % 17 / 17f;
        }

        var id = "m" + i.ToString("D7", CultureInfo.InvariantCulture);
        var json = Encoding.UTF8.GetBytes($$"""{"id":"{{id}}","kind":"observation","text":"{{new string('t', 220)}}","at":{{1_700_000_000 + i}}}""");
        return new SyncEntity(new EntityKey("memories", id), json, vector, [
            new SyncEdge("ABOUT", new EntityKey("memories", "m" + (i % 997).ToString("D7", CultureInfo.InvariantCulture))),
            new SyncEdge("FOLLOWS", new EntityKey("memories", "m" + Math.Max(0, i - 1).ToString("D7", CultureInfo.InvariantCulture))),
        ]);
    }

    [IterationSetup(Target = nameof(OutboxRelay))]
    public void SetupOutbox() => SetupAsync(raw: false).GetAwaiter().GetResult();

    [IterationSetup(Target = nameof(RawSkipLockedRelay))]
    public void SetupRaw() => SetupAsync(raw: true).GetAwaiter().GetResult();

    private async Task SetupAsync(bool raw)
    {
        _directory = Path.Combine(Path.GetTempPath(), "css-bench-outbox-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        await ExecuteAsync("DROP SCHEMA IF EXISTS crossstoresync CASCADE; DROP TABLE IF EXISTS bench_outbox;");
        if (raw)
        {
            await ExecuteAsync("CREATE TABLE bench_outbox (seq bigserial PRIMARY KEY, collection text NOT NULL, id text NOT NULL, payload bytea NOT NULL)");
            await using var connection = await _dataSource.OpenConnectionAsync();
            for (var start = 0; start < Changes; start += 1000)
            {
                var batch = Enumerable.Range(start, 1000).Select(Memory).ToArray();
                await using var insert = new NpgsqlCommand("INSERT INTO bench_outbox (collection, id, payload) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])", connection);
                insert.Parameters.Add(new NpgsqlParameter { Value = batch.Select(e => e.Key.Collection).ToArray() });
                insert.Parameters.Add(new NpgsqlParameter { Value = batch.Select(e => e.Key.Id).ToArray() });
                insert.Parameters.Add(new NpgsqlParameter { Value = batch.Select(e => EntityEncoding.EncodeToArray(e)).ToArray() });
                await insert.ExecuteNonQueryAsync();
            }

            await ExecuteAsync("VACUUM ANALYZE bench_outbox");
            return;
        }

        // The outbox, written as an application would (documents and log entries committed together).
        var documents = new PostgresDocumentStore(_dataSource);
        var log = new PostgresChangeLog(_dataSource, documents, new PostgresChangeLogOptions { Partitions = Partitions });
        await log.InitializeAsync(CancellationToken.None);
        await documents.InitializeAsync(Collections, CancellationToken.None);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        for (var start = 0; start < Changes; start += 1000)
        {
            var batch = Enumerable.Range(start, 1000).Select(i => EntityChange.Upsert(Memory(i), new HlcTimestamp(now + (i >> 12), i & 4095, 1))).ToArray();
            _head = (await log.AppendAndApplyAsync(batch, null, CancellationToken.None)).Last;
        }

        // Give each worker its share of the partitions up front (as after a rebalance), so the measurement is the relay
        // and not the first lease round.
        await ExecuteAsync($"""
            INSERT INTO crossstoresync.workers (store, worker, seen_until)
            SELECT s, 'w' || w, clock_timestamp() + interval '1 minute' FROM unnest(ARRAY['vectors', 'graph']) s, generate_series(0, {Workers - 1}) w;
            INSERT INTO crossstoresync.partition_cursors (store, part, lsn, owner, lease_until)
            SELECT s, p, 0, 'w' || (p % {Workers}), clock_timestamp() + interval '1 minute' FROM unnest(ARRAY['vectors', 'graph']) s, generate_series(0, {Partitions - 1}) p;
            """);
        await ExecuteAsync("VACUUM ANALYZE crossstoresync.log_entries");
    }

    [IterationCleanup]
    public void Cleanup()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Benchmark(Baseline = true)]
    public async Task RawSkipLockedRelay()
    {
        using var writer = await RawSqliteWriter.CreateAsync(_directory);
        var sqliteGate = new SemaphoreSlim(1, 1);
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            var batch = new List<SyncEntity>(512);
            while (true)
            {
                await using var connection = await _dataSource.OpenConnectionAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await using var claim = new NpgsqlCommand("DELETE FROM bench_outbox WHERE seq IN (SELECT seq FROM bench_outbox ORDER BY seq LIMIT 512 FOR UPDATE SKIP LOCKED) RETURNING payload", connection, transaction);
                batch.Clear();
                await using (var reader = await claim.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync())
                    {
                        batch.Add(EntityEncoding.Decode(reader.GetFieldValue<byte[]>(0)));
                    }
                }

                if (batch.Count == 0)
                {
                    return;
                }

                await sqliteGate.WaitAsync();
                try
                {
                    writer.WriteReplicas(batch);
                }
                finally
                {
                    sqliteGate.Release();
                }

                await transaction.CommitAsync();
            }
        })));
    }

    [Benchmark]
    public async Task OutboxRelay()
    {
        await using var vectors = new SqliteVectorStore(Path.Combine(_directory, "vectors.db"), "vectors");
        await using var graph = new SqliteGraphStore(Path.Combine(_directory, "graph.db"), "graph");
        var engines = new List<EngineHost>();
        try
        {
            for (var w = 0; w < Workers; w++)
            {
                var worker = "w" + w.ToString(CultureInfo.InvariantCulture);
                engines.Add(EngineHost.Start(
                    b => b.UsePostgreSql(o =>
                        {
                            o.ConnectionString = _connectionString;
                            o.Partitions = Partitions;
                        })
                        .AddReplica("vectors", _ => vectors)
                        .AddReplica("graph", _ => graph),
                    o =>
                    {
                        o.AddCollection("memories", 64);
                        o.WorkerId = worker;
                        o.PartitionLeaseDuration = TimeSpan.FromSeconds(30);
                        o.PollInterval = TimeSpan.FromMilliseconds(20);
                    }));
            }

            var outcome = await engines[0].Manager.WaitForSyncAsync(new SyncTicket(new LsnRange(_head, _head), default), TimeSpan.FromMinutes(5));
            if (outcome != SyncWaitOutcome.Synced)
            {
                throw new InvalidOperationException($"The relay did not finish: {outcome}.");
            }
        }
        finally
        {
            foreach (var engine in engines)
            {
                await engine.DisposeAsync();
            }
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
