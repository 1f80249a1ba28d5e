using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>Tombstone purges (log retention).</summary>
public sealed partial class PostgresDocumentStore
{
    /// <inheritdoc />
    /// <remarks>One statement over the partial index of tombstones (<c>doctomb_&lt;collection&gt;</c>); autovacuum reclaims the space.</remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        var table = _tables.Qualified(collection);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE deleted AND version < $1 LIMIT $2)", connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = olderThan.Value });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
}
