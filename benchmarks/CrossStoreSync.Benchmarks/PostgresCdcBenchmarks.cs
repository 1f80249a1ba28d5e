using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// CDC throughput from one logical replication slot: 5,000 row changes (upserts of rows with a ~500-byte text and a 16-d
/// real[] embedding, in transactions of 500) already in the WAL when the measurement starts.
/// Baseline: a plain <see cref="LogicalReplicationConnection"/> read loop (pgoutput, binary, every value decoded) over
/// the same kind of WAL. Measured: <see cref="PostgresChangeFeed"/> started on that slot until every change is written
/// through the engine and applied in the SQLite source, vector and graph stores. For scale, the same entities written
/// straight through <see cref="IChangeFeedWriter"/> (no CDC) show what the engine alone costs. Needs the test server
/// (<c>bash eng/postgres.sh start</c>, or <c>CSS_PG_CONNECTION</c>); each iteration gets a fresh slot.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class PostgresCdcBenchmarks
{
    private const int Changes = 5000;
    private const int RowsPerTransaction = 500;
    private const int Dimension = 16;
    private const string Table = "bench_items";
    private string _admin = "";
    private string _database = "";
    private string _connectionString = "";
    private string _slot = "";
    private int _round;
    private NpgsqlLogSequenceNumber _target;
    private string _directory = "";
    private ServiceProvider? _provider;
    private List<IHostedService> _started = [];
    private readonly string _body = string.Concat(Enumerable.Repeat("0123456789abcdef0123456789abcdef", 16));

    [GlobalSetup]
    public async Task Setup()
    {
        var configured = Environment.GetEnvironmentVariable("CSS_PG_CONNECTION");
        _admin = string.IsNullOrWhiteSpace(configured) ? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres" : configured;
        _database = "css_bench_cdc_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(_admin))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {_database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        _connectionString = new NpgsqlConnectionStringBuilder(_admin) { Database = _database }.ConnectionString;
        await ExecuteAsync($"CREATE TABLE {Table} (id int PRIMARY KEY, rev int NOT NULL, title text NOT NULL, body text NOT NULL, embedding real[] NOT NULL)");
        await ExecuteAsync($"CREATE PUBLICATION bench FOR TABLE {Table} WITH (publish = 'insert, update, delete')");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(_admin);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }

    [IterationSetup(Target = nameof(ReadLoop))]
    public void SetupReadLoop() => PrepareWal().GetAwaiter().GetResult();

    [IterationSetup(Targets = [nameof(Feed), nameof(EngineOnly)])]
    public void SetupFeed()
    {
        PrepareWal().GetAwaiter().GetResult();
        _directory = Directory.CreateTempSubdirectory("css-bench-cdc").FullName;
        var services = new ServiceCollection();
        services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", Dimension);
                o.DispatchBatchSize = 1000;
            })
            .UseSqlite(o => o.DirectoryPath = _directory)
            .AddPostgresChangeFeed(o =>
            {
                o.ConnectionString = _connectionString;
                o.SlotName = _slot;
                o.PublicationName = "bench";
                o.BatchSize = 500;
                o.MapTable(Table, "items", static (key, row) => new SyncEntity(
                    key,
                    row.ToJson("embedding"),
                    row.GetVector("embedding"),
                    [new SyncEdge("NEXT", new EntityKey("items", (row.Get<int>("id") + 1).ToString(CultureInfo.InvariantCulture)))]));
            });
        _provider = services.BuildServiceProvider();

        // The engine runs before the measurement; the feed is started by the benchmark itself.
        _started = [];
        foreach (var hosted in _provider.GetServices<IHostedService>())
        {
            if (hosted is not PostgresChangeFeed)
            {
                hosted.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
                _started.Add(hosted);
            }
        }
    }

    [IterationCleanup(Target = nameof(ReadLoop))]
    public void CleanupReadLoop() => DropSlotAsync().GetAwaiter().GetResult();

    [IterationCleanup(Targets = [nameof(Feed), nameof(EngineOnly)])]
    public void CleanupFeed()
    {
        _provider!.GetRequiredService<PostgresChangeFeed>().StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        for (var i = _started.Count - 1; i >= 0; i--)
        {
            _started[i].StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        }

        _provider!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, true);
        DropSlotAsync().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Changes, Description = "plain LogicalReplicationConnection read loop (pgoutput, values decoded)")]
    public async Task<int> ReadLoop()
    {
        await using var replication = new LogicalReplicationConnection(_connectionString);
        await replication.Open();
        using var stop = new CancellationTokenSource();
        var options = new PgOutputReplicationOptions("bench", PgOutputProtocolVersion.V1, binary: true, streamingMode: null, messages: true, twoPhase: null);
        var read = 0;
        var checksum = 0L;
        await foreach (var message in replication.StartReplication(new PgOutputReplicationSlot(_slot), options, stop.Token))
        {
            ReplicationTuple? row = message switch
            {
                InsertMessage insert => insert.NewRow,
                UpdateMessage update => update.NewRow,
                _ => null,
            };
            if (row is not null)
            {
                await foreach (var value in row)
                {
                    checksum += (await value.Get<object>())?.GetHashCode() ?? 0;
                }

                read++;
            }

            if (message is CommitMessage commit && commit.TransactionEndLsn >= _target && read >= Changes)
            {
                break;
            }
        }

        return read + (int)(checksum & 1);
    }

    [Benchmark(OperationsPerInvoke = Changes, Description = "PostgresChangeFeed → engine → SQLite source + vector + graph, until synced")]
    public async Task<SyncWaitOutcome> Feed()
    {
        var feed = _provider!.GetRequiredService<PostgresChangeFeed>();
        await feed.StartAsync(CancellationToken.None);
        var ticket = await feed.WaitForLsnAsync(_target, TimeSpan.FromMinutes(2)) ?? throw new InvalidOperationException("The feed wrote nothing.");
        var outcome = await _provider!.GetRequiredService<ISyncManager>().WaitForSyncAsync(ticket, TimeSpan.FromMinutes(2));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }

    [Benchmark(OperationsPerInvoke = Changes, Description = "no CDC: the same entities through IChangeFeedWriter (500 per batch), until synced")]
    public async Task<SyncWaitOutcome> EngineOnly()
    {
        var writer = _provider!.GetRequiredService<IChangeFeedWriter>();
        var batch = new FeedChange[RowsPerTransaction];
        SyncTicket last = default;
        for (var first = 0; first < Changes; first += RowsPerTransaction)
        {
            var start = ((_round - 1) * Changes / 2 + first) % (Changes * 2);
            for (var i = 0; i < batch.Length; i++)
            {
                var id = start + i;
                var key = new EntityKey("items", id.ToString(CultureInfo.InvariantCulture));
                var vector = new float[Dimension];
                Array.Fill(vector, id / 1000f);
                var document = string.Create(CultureInfo.InvariantCulture, $"{{\"id\":{id},\"rev\":{_round - 1},\"title\":\"item {id}\",\"body\":\"{_body}\"}}");
                batch[i] = FeedChange.Upsert(SyncEntity.FromJson(key, document, vector, [new SyncEdge("NEXT", new EntityKey("items", (id + 1).ToString(CultureInfo.InvariantCulture)))]));
            }

            last = await writer.WriteAsync(batch, new FeedPosition("bench", first.ToString(CultureInfo.InvariantCulture)));
        }

        var outcome = await _provider!.GetRequiredService<ISyncManager>().WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }

    /// <summary>A fresh slot, then 5,000 row changes after it (upserts over ids 0..9999: inserts first, updates once the table is full).</summary>
    private async Task PrepareWal()
    {
        _slot = "bench_" + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"SELECT pg_create_logical_replication_slot('{_slot}', 'pgoutput')");
        var round = _round++;
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        for (var first = 0; first < Changes; first += RowsPerTransaction)
        {
            // Each round shifts the window by 2,500 ids over 0..9,999; windows never straddle the wrap.
            var start = (round * Changes / 2 + first) % (Changes * 2);
            await using var command = new NpgsqlCommand(
                string.Create(CultureInfo.InvariantCulture, $"""
                INSERT INTO {Table}
                SELECT g, {round}, 'item ' || g, repeat(md5(g::text), 16), array_fill(g::real / 1000, ARRAY[{Dimension}])
                FROM generate_series({start}, {start + RowsPerTransaction - 1}) g
                ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, title = excluded.title
                """),
                connection);
            await command.ExecuteNonQueryAsync();
        }

        await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_lsn()", connection);
        _target = (NpgsqlLogSequenceNumber)(await lsn.ExecuteScalarAsync())!;
    }

    private async Task DropSlotAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await ExecuteAsync($"SELECT pg_drop_replication_slot('{_slot}')");
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == "55006" && attempt < 100)
            {
                // The walsender of the connection just closed still holds the slot for a moment.
                await Task.Delay(20);
            }
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
