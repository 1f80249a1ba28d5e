using System.Globalization;
using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Sqlite.Log;

/// <summary>Log retention: truncation in short batches, size estimates, dead-letter expiry, incremental vacuum.</summary>
public sealed partial class SqliteChangeLog
{
    // Per retained entry beyond its payload and key: the fixed columns, the row header and the key index's copy of
    // (collection, id, lsn). An estimate; the log does not measure pages per table.
    private const int EntryOverheadBytes = 56;

    /// <inheritdoc />
    public ValueTask<long> GetTruncatedThroughAsync(CancellationToken cancellationToken) =>
        ScalarAsync("SELECT COALESCE((SELECT through FROM log_truncation WHERE id = 1), 0)");

    /// <inheritdoc />
    /// <remarks>
    /// One primary-key range delete in one group commit of the single writer: appends queued meanwhile wait for at
    /// most one batch. The new truncation point is saved in the same transaction.
    /// </remarks>
    public async ValueTask<LogTruncation> TruncateAsync(long throughLsn, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        EnsureInitialized();
        return await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;

            // The batch ends at the maxCount-th entry at or below throughLsn, or at throughLsn when fewer are left.
            command.CommandText = """
                SELECT COALESCE((SELECT through FROM log_truncation WHERE id = 1), 0),
                       COALESCE((SELECT lsn FROM log_entries WHERE lsn <= $t ORDER BY lsn LIMIT 1 OFFSET $n - 1), $t)
                """;
            command.Parameters.AddWithValue("$t", throughLsn);
            command.Parameters.AddWithValue("$n", maxCount);
            long previous, upper;
            using (var reader = command.ExecuteReader())
            {
                reader.Read();
                previous = reader.GetInt64(0);
                upper = reader.GetInt64(1);
            }

            if (upper <= previous)
            {
                return new LogTruncation(0, previous);
            }

            command.Parameters.Clear();
            command.CommandText = "DELETE FROM log_entries WHERE lsn <= $u";
            command.Parameters.AddWithValue("$u", upper);
            var removed = command.ExecuteNonQuery();
            command.CommandText = "INSERT INTO log_truncation (id, through) VALUES (1, $u) ON CONFLICT (id) DO UPDATE SET through = max(through, excluded.through)";
            command.ExecuteNonQuery();
            return new LogTruncation(removed, upper);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Entries are counted from LSNs (they are dense); bytes are that count times the average size of the newest 1,000
    /// entries (payload, key, fixed columns and index). Entries appended with the source write carry no payload: their
    /// entity is the documents row.
    /// </remarks>
    public async ValueTask<LogRetainedSize> GetRetainedSizeAsync(CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT ({LastLsnSql}) - COALESCE((SELECT through FROM log_truncation WHERE id = 1), 0),
                   (SELECT COALESCE(avg(COALESCE(length(payload), 0) + 2 * (length(collection) + length(id))), 0)
                    FROM (SELECT payload, collection, id FROM log_entries ORDER BY lsn DESC LIMIT 1000))
            """;
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        reader.Read();
        var entries = Math.Max(0, reader.GetInt64(0));
        var average = reader.GetDouble(1) + EntryOverheadBytes;
        return new LogRetainedSize(entries, (long)(entries * average));
    }

    /// <inheritdoc />
    public async ValueTask<HlcTimestamp?> GetOldestVersionAfterAsync(long afterLsn, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT MIN(version) FROM log_entries WHERE lsn > $l";
        command.Parameters.AddWithValue("$l", afterLsn);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long version ? new HlcTimestamp(version) : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, int>> RemoveDeadLettersAsync(DateTimeOffset before, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        return await _database.WriteAsync<IReadOnlyDictionary<string, int>>((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;
            command.CommandText = "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE created_at < $b ORDER BY id LIMIT $n) RETURNING store";
            command.Parameters.AddWithValue("$b", before.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$n", maxCount);
            var removed = new Dictionary<string, int>(StringComparer.Ordinal);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var store = reader.GetString(0);
                removed[store] = removed.GetValueOrDefault(store) + 1;
            }

            return removed;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, long>> CountDeadLettersByStoreAsync(CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT store, count(*) FROM dead_letters GROUP BY store";
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (reader.Read())
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    /// <inheritdoc />
    /// <remarks>Incremental vacuum of <c>source.db</c>, a bounded number of pages per group commit.</remarks>
    public async ValueTask CompactAsync(CancellationToken cancellationToken) =>
        await _database.ReleaseFreePagesAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>The size of the database file (<c>source.db</c> and its write-ahead log), in bytes.</summary>
    public long FileBytes() => _database.FileBytes();

    /// <summary>True when opening converted an existing <c>source.db</c> to incremental vacuum (a one-time VACUUM).</summary>
    public bool ConvertedToIncrementalVacuum => _database.ConvertedToIncrementalVacuum;

    /// <summary>Counts the rows of <c>log_entries</c> (a full count; for tests and soak runs).</summary>
    public async ValueTask<long> CountEntriesAsync(CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM log_entries";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }
}
