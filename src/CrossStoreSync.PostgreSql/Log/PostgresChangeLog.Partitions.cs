using CrossStoreSync.Log;
using CrossStoreSync.Model;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>Partition leases (scale-out) and dead letters.</summary>
public sealed partial class PostgresChangeLog
{
    /// <inheritdoc />
    public async ValueTask<PartitionLeases> AcquirePartitionsAsync(string store, string worker, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(store);
        ArgumentException.ThrowIfNullOrEmpty(worker);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(leaseDuration, TimeSpan.Zero);
        EnsureInitialized();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        // Liveness, the partition rows (a store dispatched before without partitions starts every partition at its old
        // cursor), the number of live workers, and the renewal of the leases held, in one round trip. Time is the
        // database's, so machines need not agree on it.
        int live;
        var held = new SortedList<int, long>();
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(Command($"""
                INSERT INTO {_s}.workers (store, worker, seen_until) VALUES ($1, $2, clock_timestamp() + $3)
                ON CONFLICT (store, worker) DO UPDATE SET seen_until = excluded.seen_until
                """, store, worker, leaseDuration));
            batch.BatchCommands.Add(Command($"DELETE FROM {_s}.workers WHERE store = $1 AND seen_until < clock_timestamp() - interval '1 day'", store));
            batch.BatchCommands.Add(Command($"""
                INSERT INTO {_s}.partition_cursors (store, part, lsn)
                SELECT $1, g, COALESCE((SELECT lsn FROM {_s}.cursors WHERE store = $1), 0) FROM generate_series(0, $2 - 1) AS g
                ON CONFLICT (store, part) DO NOTHING
                """, store, PartitionCount));
            batch.BatchCommands.Add(Command($"SELECT count(*)::int FROM {_s}.workers WHERE store = $1 AND seen_until > clock_timestamp()", store));
            batch.BatchCommands.Add(Command($"""
                UPDATE {_s}.partition_cursors SET lease_until = clock_timestamp() + $3
                WHERE store = $1 AND owner = $2 AND lease_until > clock_timestamp()
                RETURNING part, lsn
                """, store, worker, leaseDuration));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            live = Math.Max(1, reader.GetInt32(0));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                held.Add(reader.GetInt32(0), reader.GetInt64(1));
            }
        }

        var fair = (PartitionCount + live - 1) / live;
        if (held.Count < fair)
        {
            // Free partitions (never held, released, or whose lease expired), lowest first; rows another worker is
            // claiming right now are skipped rather than waited for.
            await using var claim = new NpgsqlCommand($"""
                UPDATE {_s}.partition_cursors p SET owner = $2, lease_until = clock_timestamp() + $3
                FROM (SELECT part FROM {_s}.partition_cursors
                      WHERE store = $1 AND (owner IS NULL OR lease_until IS NULL OR lease_until <= clock_timestamp())
                      ORDER BY part LIMIT $4 FOR UPDATE SKIP LOCKED) f
                WHERE p.store = $1 AND p.part = f.part
                RETURNING p.part, p.lsn
                """, connection, transaction);
            AddParameters(claim.Parameters, store, worker, leaseDuration, fair - held.Count);
            await using var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                held.Add(reader.GetInt32(0), reader.GetInt64(1));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new PartitionLeases([.. held.Keys], [.. held.Values], fair, live);
    }

    /// <inheritdoc />
    /// <remarks>A worker that holds nothing afterwards also leaves the live set, so the others' fair share grows at once.</remarks>
    public async ValueTask ReleasePartitionsAsync(string store, string worker, IReadOnlyList<int> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(Command($"UPDATE {_s}.partition_cursors SET owner = NULL, lease_until = NULL WHERE store = $1 AND owner = $2 AND part = ANY($3)", store, worker, partitions.ToArray()));
        batch.BatchCommands.Add(Command($"DELETE FROM {_s}.workers w WHERE w.store = $1 AND w.worker = $2 AND NOT EXISTS (SELECT 1 FROM {_s}.partition_cursors p WHERE p.store = $1 AND p.owner = $2 AND p.lease_until > clock_timestamp())", store, worker));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<int>> SavePartitionCursorsAsync(string store, string worker, IReadOnlyList<int> partitions, IReadOnlyList<long> lsns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        ArgumentNullException.ThrowIfNull(lsns);
        if (partitions.Count == 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // Fenced by the lease: a worker that stalled past its lease cannot move a cursor its successor owns.
        await using var command = new NpgsqlCommand($"""
            UPDATE {_s}.partition_cursors p SET lsn = GREATEST(p.lsn, c.lsn)
            FROM unnest($3::int[], $4::bigint[]) AS c(part, lsn)
            WHERE p.store = $1 AND p.part = c.part AND p.owner = $2 AND p.lease_until > clock_timestamp()
            RETURNING p.part
            """, connection);
        AddParameters(command.Parameters, store, worker, partitions.ToArray(), lsns.ToArray());
        var saved = new HashSet<int>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                saved.Add(reader.GetInt32(0));
            }
        }

        return saved.Count == partitions.Count ? [] : [.. partitions.Where(p => !saved.Contains(p))];
    }

    /// <inheritdoc />
    public async ValueTask<long[]> GetPartitionCursorsAsync(string store, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"""
            SELECT g, COALESCE(p.lsn, (SELECT lsn FROM {_s}.cursors WHERE store = $1), 0)
            FROM generate_series(0, $2 - 1) AS g
            LEFT JOIN {_s}.partition_cursors p ON p.store = $1 AND p.part = g
            """, connection);
        AddParameters(command.Parameters, store, PartitionCount);
        var cursors = new long[PartitionCount];
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            cursors[reader.GetInt32(0)] = reader.GetInt64(1);
        }

        return cursors;
    }

    /// <inheritdoc />
    public async ValueTask AdvanceAllPartitionsAsync(string store, long lsn, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(Command($"""
            INSERT INTO {_s}.partition_cursors (store, part, lsn) SELECT $1, g, $3 FROM generate_series(0, $2 - 1) AS g
            ON CONFLICT (store, part) DO UPDATE SET lsn = GREATEST({_s}.partition_cursors.lsn, excluded.lsn)
            """, store, PartitionCount, lsn));
        batch.BatchCommands.Add(Command($"INSERT INTO {_s}.cursors (store, lsn) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET lsn = GREATEST({_s}.cursors.lsn, excluded.lsn)", store, lsn));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask AddDeadLetterAsync(string store, LogRecord record, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"""
            INSERT INTO {_s}.dead_letters (store, lsn, collection, entity_id, kind, version, reason, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """, connection);
        AddParameters(command.Parameters, store, record.Lsn, record.Change.Key.Collection, record.Change.Key.Id, (short)record.Change.Kind, record.Change.Version.Value, reason, at.ToUniversalTime());
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? store, int maxCount, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT {DeadLetterColumns} FROM {_s}.dead_letters WHERE ($1::text IS NULL OR store = $1) ORDER BY id LIMIT $2", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)store ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
        return await ReadDeadLettersAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<DeadLetter?> GetDeadLetterAsync(string store, EntityKey key, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT {DeadLetterColumns} FROM {_s}.dead_letters WHERE store = $1 AND collection = $2 AND entity_id = $3 ORDER BY id DESC LIMIT 1", connection);
        AddParameters(command.Parameters, store, key.Collection, key.Id);
        var letters = await ReadDeadLettersAsync(command, cancellationToken).ConfigureAwait(false);
        return letters.Count == 0 ? null : letters[0];
    }

    /// <inheritdoc />
    public async ValueTask<int> CountDeadLettersAsync(LsnRange range, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT count(*)::int FROM {_s}.dead_letters WHERE lsn BETWEEN $1 AND $2", connection);
        AddParameters(command.Parameters, range.First, range.Last);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveDeadLetterAsync(long id, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"DELETE FROM {_s}.dead_letters WHERE id = $1", connection);
        AddParameters(command.Parameters, id);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    private const string DeadLetterColumns = "id, store, lsn, collection, entity_id, kind, version, reason, created_at";

    private static async Task<List<DeadLetter>> ReadDeadLettersAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<DeadLetter>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new DeadLetter(
                reader.GetInt64(0),
                reader.GetString(1),
                reader.GetInt64(2),
                new EntityKey(reader.GetString(3), reader.GetString(4)),
                (ChangeKind)reader.GetInt16(5),
                new HlcTimestamp(reader.GetInt64(6)),
                reader.GetString(7),
                new DateTimeOffset(reader.GetDateTime(8), TimeSpan.Zero)));
        }

        return result;
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        AddParameters(command.Parameters, values);
        return command;
    }

    private static void AddParameters(NpgsqlParameterCollection parameters, params object[] values)
    {
        foreach (var value in values)
        {
            parameters.Add(new NpgsqlParameter { Value = value });
        }
    }
}
