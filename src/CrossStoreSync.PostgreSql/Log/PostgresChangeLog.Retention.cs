using CrossStoreSync.Log;
using CrossStoreSync.Model;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>
/// Log retention: batched deletes of the oldest entries with the truncation point saved in the same statement, and a
/// plain <c>VACUUM</c> of the log table once as many entries were deleted as are kept (measured against untuned
/// autovacuum, a VACUUM per round and an LSN-range partitioned log whose old partitions are dropped:
/// benchmarks/README.md, "Log retention").
/// </summary>
public sealed partial class PostgresChangeLog
{
    // Entries this process deleted since its last VACUUM of the log table.
    private long _removedSinceVacuum;

    /// <inheritdoc />
    public async ValueTask<long> GetTruncatedThroughAsync(CancellationToken cancellationToken) =>
        await ScalarInt64Async($"SELECT COALESCE((SELECT through FROM {_s}.log_truncation WHERE id = 1), 0)", cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    /// <remarks>
    /// LSNs are dense, so a batch is one primary-key range, <c>(truncated, truncated + maxCount]</c>, deleted in one
    /// statement together with the new truncation point. Appends take only the <c>log_head</c> row lock, which this
    /// does not touch: they never wait for a truncation. Two processes truncating at once delete the same range; the
    /// second finds nothing left and the point only moves forward.
    /// </remarks>
    public async ValueTask<LogTruncation> TruncateAsync(long throughLsn, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        EnsureInitialized();
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"""
                WITH bound AS (
                    SELECT t, LEAST($1::bigint, t + $2::bigint) AS u
                    FROM (SELECT COALESCE((SELECT through FROM {_s}.log_truncation WHERE id = 1), 0) AS t) p),
                gone AS (
                    DELETE FROM {_s}.log_entries e USING bound WHERE e.lsn > bound.t AND e.lsn <= bound.u RETURNING 1),
                saved AS (
                    INSERT INTO {_s}.log_truncation (id, through) SELECT 1, u FROM bound WHERE u > t
                    ON CONFLICT (id) DO UPDATE SET through = GREATEST({_s}.log_truncation.through, excluded.through)
                    RETURNING through)
                SELECT (SELECT count(*) FROM gone), COALESCE((SELECT through FROM saved), (SELECT t FROM bound))
                """, connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = throughLsn });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = maxCount });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var removed = reader.GetInt64(0);
            Interlocked.Add(ref _removedSinceVacuum, removed);
            return new LogTruncation(removed, reader.GetInt64(1));
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("truncate", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Entries from LSNs (dense); bytes are the log table's real size on disk (heap, indexes and TOAST, space not yet
    /// reclaimed by vacuum included), so a byte cap bounds the disk the log takes.
    /// </remarks>
    public async ValueTask<LogRetainedSize> GetRetainedSizeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"""
            SELECT h.last_lsn - COALESCE((SELECT through FROM {_s}.log_truncation WHERE id = 1), 0),
                   pg_total_relation_size(to_regclass($1))
            FROM {_s}.log_head h WHERE h.id = 1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _s + ".log_entries" });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new LogRetainedSize(Math.Max(0, reader.GetInt64(0)), reader.IsDBNull(1) ? 0 : reader.GetInt64(1))
            : new LogRetainedSize(0, 0);
    }

    /// <inheritdoc />
    public async ValueTask<HlcTimestamp?> GetOldestVersionAfterAsync(long afterLsn, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT min(version) FROM {_s}.log_entries WHERE lsn > $1", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterLsn });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long version ? new HlcTimestamp(version) : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, int>> RemoveDeadLettersAsync(DateTimeOffset before, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"""
            DELETE FROM {_s}.dead_letters WHERE id IN (SELECT id FROM {_s}.dead_letters WHERE created_at < $1 ORDER BY id LIMIT $2)
            RETURNING store
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = before });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
        var removed = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var store = reader.GetString(0);
            removed[store] = removed.GetValueOrDefault(store) + 1;
        }

        return removed;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, long>> CountDeadLettersByStoreAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT store, count(*) FROM {_s}.dead_letters GROUP BY store", connection);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    /// <inheritdoc />
    /// <remarks>
    /// A plain <c>VACUUM</c> of the log table (not FULL: it takes no lock that blocks appends or reads), once the entries
    /// this process deleted since the last one reach the entries kept: the table then stays within about twice its
    /// live rows whatever autovacuum's schedule, and the cost per entry stays constant (each VACUUM reads about twice
    /// the live rows, once per that many deletes). Measured against autovacuum alone, a VACUUM per round and an LSN-range
    /// partitioned log: benchmarks/README.md, "Log retention". A role that does not own the table gets a warning from
    /// the server and autovacuum does the work.
    /// </remarks>
    public async ValueTask CompactAsync(CancellationToken cancellationToken)
    {
        var removed = Interlocked.Read(ref _removedSinceVacuum);
        if (removed == 0)
        {
            return;
        }

        if (removed < (await GetRetainedSizeAsync(cancellationToken).ConfigureAwait(false)).Entries)
        {
            return;
        }

        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, null, $"VACUUM {_s}.log_entries", cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _removedSinceVacuum, -removed);
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("vacuum", ex);
        }
    }

    /// <summary>Counts the rows of the log table (a full count; for tests and soak runs).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async ValueTask<long> CountEntriesAsync(CancellationToken cancellationToken) =>
        await ScalarInt64Async($"SELECT count(*) FROM {_s}.log_entries", cancellationToken).ConfigureAwait(false);
}
