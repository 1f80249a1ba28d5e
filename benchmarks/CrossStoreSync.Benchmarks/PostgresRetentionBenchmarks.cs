using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// How to keep PostgreSQL's change log bounded (issue 13): sustained appends in the log's own shape (the same columns,
/// primary key and indexes, 600-byte payloads, appended 200 per transaction through <c>unnest</c>) while a retention round
/// every 5,000 appends keeps the newest 20,000 entries. Compared in the same run against appends with no retention:
/// <list type="bullet">
/// <item>batched deletes (2,000 per transaction) and the server's autovacuum, untuned;</item>
/// <item>batched deletes followed by a plain <c>VACUUM</c> of the log table after each round;</item>
/// <item>batched deletes, with a plain <c>VACUUM</c> once the rows deleted since the last one reach the rows kept (what
/// <c>PostgresChangeLog</c> does);</item>
/// <item>a log partitioned by LSN range (5,000 per partition, created ahead), whose partitions wholly below the window
/// are dropped.</item>
/// </list>
/// Appended entries per second come from the mean; each method's GlobalCleanup prints the table's size (heap, indexes,
/// TOAST; every partition), its peak over the run, dead tuples and the WAL written, which the README records.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 12)]
public class PostgresRetentionBenchmarks
{
    private const int RowsPerInvoke = 20_000;
    private const int RowsPerAppend = 200;
    private const int RoundEvery = 5_000;
    private const int Window = 20_000;
    private const int DeleteBatch = 2_000;
    private const int PartitionRows = 5_000;
    private const string Database = "css_bench_retention";
    private NpgsqlDataSource _dataSource = null!;
    private string _method = "";
    private long _head;
    private long _truncated;
    private long _partitionsUpTo;
    private long _peakBytes;
    private long _deletedSinceVacuum;
    private string _walStart = "";
    private byte[][] _payloads = [];

    private async Task CreateLogAsync()
    {
        var admin = Environment.GetEnvironmentVariable("CSS_PG_CONNECTION") is { Length: > 0 } configured ? configured : "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await Execute(connection, $"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
            await Execute(connection, $"CREATE DATABASE {Database}");
        }

        _dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(admin) { Database = Database }.ConnectionString);
        _payloads = [.. Enumerable.Range(0, RowsPerAppend).Select(i => Enumerable.Range(0, 600).Select(b => (byte)((i + b) % 251)).ToArray())];
        await using var setup = await _dataSource.OpenConnectionAsync();
        var partitioned = _method == nameof(PartitionDrop);
        await Execute(setup, $"""
            CREATE TABLE log_entries (
                lsn bigint NOT NULL, part int NOT NULL, collection text NOT NULL, id text NOT NULL, kind smallint NOT NULL,
                version bigint NOT NULL, state smallint NOT NULL, hash bytea NOT NULL, payload bytea, checksum bigint NOT NULL,
                PRIMARY KEY (lsn)){(partitioned ? " PARTITION BY RANGE (lsn)" : string.Empty)};
            CREATE INDEX log_entries_part ON log_entries (part, lsn);
            CREATE INDEX log_entries_key ON log_entries (collection, id, lsn);
            CREATE INDEX log_entries_pending ON log_entries (lsn) WHERE state = 0;
            """);
        await using var wal = new NpgsqlCommand("SELECT pg_current_wal_lsn()::text", setup);
        _walStart = (string)(await wal.ExecuteScalarAsync())!;
    }

    // BenchmarkDotNet runs each method in its own process; the setup needs to know which one it prepares.
    [GlobalSetup(Target = nameof(AppendOnly))]
    public Task SetupAppendOnly() => SetupFor(nameof(AppendOnly));

    [GlobalSetup(Target = nameof(DeleteAutovacuum))]
    public Task SetupDeleteAutovacuum() => SetupFor(nameof(DeleteAutovacuum));

    [GlobalSetup(Target = nameof(DeleteVacuum))]
    public Task SetupDeleteVacuum() => SetupFor(nameof(DeleteVacuum));

    [GlobalSetup(Target = nameof(DeleteVacuumWhenHalfDead))]
    public Task SetupDeleteVacuumWhenHalfDead() => SetupFor(nameof(DeleteVacuumWhenHalfDead));

    [GlobalSetup(Target = nameof(PartitionDrop))]
    public Task SetupPartitionDrop() => SetupFor(nameof(PartitionDrop));

    [GlobalCleanup]
    public async Task GlobalCleanup()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM log_entries),
                   (SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'log\_entries%'),
                   (SELECT COALESCE(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname LIKE 'log_entries%'),
                   pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)
            """, connection);
        command.Parameters.AddWithValue(_walStart);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// RETENTION-FIGURES {_method}: appended {_head:N0}, rows {reader.GetInt64(0):N0}, table {Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture):N0} B (peak {_peakBytes:N0} B), dead tuples {reader.GetInt64(2):N0}, WAL {reader.GetDecimal(3):N0} B"));
        await _dataSource.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = RowsPerInvoke, Description = "append only, no retention")]
    public Task<long> AppendOnly() => RunAsync(static _ => Task.CompletedTask);

    [Benchmark(OperationsPerInvoke = RowsPerInvoke, Description = "batched deletes + autovacuum")]
    public Task<long> DeleteAutovacuum() => RunAsync(connection => DeleteAsync(connection, vacuum: false));

    [Benchmark(OperationsPerInvoke = RowsPerInvoke, Description = "batched deletes + VACUUM per round")]
    public Task<long> DeleteVacuum() => RunAsync(connection => DeleteAsync(connection, vacuum: true));

    [Benchmark(OperationsPerInvoke = RowsPerInvoke, Description = "batched deletes + VACUUM once deleted >= kept")]
    public Task<long> DeleteVacuumWhenHalfDead() => RunAsync(connection => DeleteAsync(connection, vacuum: null));

    [Benchmark(OperationsPerInvoke = RowsPerInvoke, Description = "LSN-range partitions, old ones dropped")]
    public Task<long> PartitionDrop() => RunAsync(DropPartitionsAsync);

    private async Task SetupFor(string method)
    {
        _method = method;
        await CreateLogAsync();
    }

    private async Task<long> RunAsync(Func<NpgsqlConnection, Task> round)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        for (var appended = 0; appended < RowsPerInvoke; appended += RowsPerAppend)
        {
            if (_method == nameof(PartitionDrop))
            {
                await EnsurePartitionsAsync(connection, _head + RowsPerAppend);
            }

            await AppendAsync(connection);
            if ((_head % RoundEvery) == 0)
            {
                await round(connection);
                await using var size = new NpgsqlCommand("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'log\\_entries%'", connection);
                _peakBytes = Math.Max(_peakBytes, Convert.ToInt64(await size.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
            }
        }

        return _head;
    }

    private async Task AppendAsync(NpgsqlConnection connection)
    {
        var lsns = new long[RowsPerAppend];
        var parts = new int[RowsPerAppend];
        var ids = new string[RowsPerAppend];
        var versions = new long[RowsPerAppend];
        for (var i = 0; i < RowsPerAppend; i++)
        {
            lsns[i] = _head + i + 1;
            parts[i] = (int)(lsns[i] % 16);
            ids[i] = "k" + (lsns[i] % 2000).ToString(CultureInfo.InvariantCulture);
            versions[i] = 1_000_000 + lsns[i];
        }

        await using var transaction = await connection.BeginTransactionAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO log_entries (lsn, part, collection, id, kind, version, state, hash, payload, checksum)
            SELECT u.lsn, u.part, 'items', u.id, 0, u.version, 1, '\x00112233445566778899aabbccddeeff'::bytea, u.payload, u.lsn * 31
            FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::bytea[]) AS u(lsn, part, id, version, payload)
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = lsns });
        insert.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = parts });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = versions });
        insert.Parameters.Add(new NpgsqlParameter { Value = _payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        await insert.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        _head += RowsPerAppend;
    }

    /// <param name="connection">The connection.</param>
    /// <param name="vacuum">True: after every round; false: never (autovacuum); null: once the rows deleted since the last VACUUM reach the rows kept.</param>
    private async Task DeleteAsync(NpgsqlConnection connection, bool? vacuum)
    {
        var through = _head - Window;
        while (_truncated < through)
        {
            var upper = Math.Min(through, _truncated + DeleteBatch);
            await using var delete = new NpgsqlCommand("DELETE FROM log_entries WHERE lsn > $1 AND lsn <= $2", connection);
            delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _truncated });
            delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = upper });
            _deletedSinceVacuum += await delete.ExecuteNonQueryAsync();
            _truncated = upper;
        }

        if (vacuum == true || (vacuum is null && _deletedSinceVacuum >= _head - _truncated))
        {
            await Execute(connection, "VACUUM log_entries");
            _deletedSinceVacuum = 0;
        }
    }

    private async Task EnsurePartitionsAsync(NpgsqlConnection connection, long upTo)
    {
        // Two partitions ahead, so an append never waits for DDL.
        while (_partitionsUpTo < upTo + (2 * PartitionRows))
        {
            var from = _partitionsUpTo + 1;
            var to = _partitionsUpTo + PartitionRows + 1;
            await Execute(connection, $"CREATE TABLE log_entries_{from} PARTITION OF log_entries FOR VALUES FROM ({from}) TO ({to})");
            _partitionsUpTo += PartitionRows;
        }
    }

    private async Task DropPartitionsAsync(NpgsqlConnection connection)
    {
        var through = _head - Window;
        while (_truncated + PartitionRows <= through)
        {
            // DROP of a partition takes an ACCESS EXCLUSIVE lock on the parent for an instant (appends wait behind it).
            await Execute(connection, $"DROP TABLE log_entries_{_truncated + 1}");
            _truncated += PartitionRows;
        }
    }

    private static async Task Execute(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
