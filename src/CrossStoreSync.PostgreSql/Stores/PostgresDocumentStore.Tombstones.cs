using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>Tombstone purges (log retention).</summary>
public sealed partial class PostgresDocumentStore
{
    // Below this many dead row versions a table is left to autovacuum.
    private const long VacuumMinimumDeadRows = 10_000;

    /// <inheritdoc />
    /// <remarks>
    /// One statement over the partial index of tombstones (<c>doctomb_&lt;collection&gt;</c>). When a purge run ends
    /// (fewer than <paramref name="maxCount"/> removed), the table is vacuumed if its dead row versions — from purges,
    /// and from every upsert, since PostgreSQL keeps the old version of an updated row until a vacuum — reach its live
    /// rows: autovacuum looks at a table at most once a minute by default, so a table whose entities are rewritten
    /// thousands of times a second would otherwise hold a minute of dead versions (the retention soak measured
    /// 540 MB of them for 2,000 live rows). Vacuuming once the dead reach the live keeps the table within about twice its
    /// live size at a constant cost per write.
    /// </remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        var table = _tables.Qualified(collection);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            int purged;
            await using (var command = new NpgsqlCommand($"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE deleted AND version < $1 LIMIT $2)", connection))
            {
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = olderThan.Value });
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
                purged = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (purged < maxCount)
            {
                await VacuumIfBloatedAsync(connection, table, cancellationToken).ConfigureAwait(false);
            }

            return purged;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            _tables.Forget(collection);
            return 0;
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "purge tombstones", null);
        }
    }

    private static async Task VacuumIfBloatedAsync(NpgsqlConnection connection, string table, CancellationToken cancellationToken)
    {
        // The statistics are PostgreSQL's own (updated as transactions end); a role that does not own the table gets a
        // warning from VACUUM and autovacuum keeps doing the work.
        await using (var stats = new NpgsqlCommand("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relid = to_regclass($1)", connection))
        {
            stats.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table });
            await using var reader = await stats.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            var dead = reader.GetInt64(1);
            if (dead < VacuumMinimumDeadRows || dead < reader.GetInt64(0))
            {
                return;
            }
        }

        await using var vacuum = new NpgsqlCommand($"VACUUM {table}", connection);
        await vacuum.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
