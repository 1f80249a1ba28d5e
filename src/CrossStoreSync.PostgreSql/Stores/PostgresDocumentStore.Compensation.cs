using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>What a change log coupled to this store needs for compensation: the held state of keys, read and locked in its transaction.</summary>
public sealed partial class PostgresDocumentStore
{
    /// <summary>
    /// Reads what the store holds for <paramref name="keys"/> inside the caller's transaction, locking the rows it finds
    /// (<c>FOR UPDATE</c>) until that transaction ends, so the state cannot change between this read and the caller's
    /// write. Tombstones come back as deletes; keys without a row are left out. Creates missing collection tables first
    /// (inside the transaction, like <see cref="ApplyWithinAsync"/>).
    /// </summary>
    /// <exception cref="NpgsqlException">The server failed (not translated: the caller owns the transaction).</exception>
    internal async Task<Dictionary<EntityKey, EntityChange>> ReadHeldForUpdateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<EntityKey> keys, CancellationToken cancellationToken)
    {
        var byCollection = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (!byCollection.TryGetValue(key.Collection, out var ids))
            {
                byCollection[key.Collection] = ids = [];
            }

            ids.Add(key.Id);
        }

        await _tables.EnsureAsync(connection, transaction, byCollection.Keys, remember: false, cancellationToken).ConfigureAwait(false);
        var held = new Dictionary<EntityKey, EntityChange>(keys.Count);
        foreach (var (collection, ids) in byCollection)
        {
            // Locked in id order, like the upsert's rows, so two writers of the same keys queue instead of deadlocking.
            ids.Sort(StringComparer.Ordinal);
            await using var command = new NpgsqlCommand(
                $"SELECT id, version, hash, deleted, {DocumentColumn}, vector, edges FROM {_tables.Qualified(collection)} WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                connection,
                transaction);
            command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = ids.ToArray() });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var key = new EntityKey(collection, reader.GetString(0));
                var version = new HlcTimestamp(reader.GetInt64(1));
                if (reader.GetBoolean(3))
                {
                    held[key] = EntityChange.Delete(key, version);
                    continue;
                }

                var entity = new SyncEntity(
                    key,
                    reader.IsDBNull(4) ? [] : reader.GetFieldValue<byte[]>(4),
                    reader.IsDBNull(5) ? default(ReadOnlyMemory<float>) : reader.GetFieldValue<float[]>(5),
                    DocumentCodec.DecodeEdges(reader.IsDBNull(6) ? null : reader.GetFieldValue<byte[]>(6)));
                held[key] = EntityChange.Upsert(entity, version, DocumentCodec.BytesToHash(reader.GetFieldValue<byte[]>(2)));
            }
        }

        return held;
    }
}
