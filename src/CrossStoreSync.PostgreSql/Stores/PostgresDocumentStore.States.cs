using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>Reads of stored states with their replication columns (causal history, sender), for replication between nodes.</summary>
public sealed partial class PostgresDocumentStore
{
    /// <summary>
    /// A state's columns. The document is the exact bytes the content hash covers (<c>document_raw</c>), so what travels
    /// always matches its hash; an edit made with SQL to <c>document</c> is the local deep check's to report.
    /// </summary>
    private const string StateColumns =
        "id, version, hash, deleted, coalesce(document_raw, convert_to(document::text, 'UTF8')), vector, edges, vv::text, from_node";

    /// <summary>
    /// <see cref="StateColumns"/> without the content (documents, vectors, edges: kilobytes per row): what a replication
    /// decision reads first, since only a conflict looks at the stored content. The row reads as a content-less upsert
    /// with the stored hash.
    /// </summary>
    private const string HeadColumns = "id, version, hash, deleted, NULL, NULL, NULL, vv::text, from_node";

    /// <summary>
    /// Reads what the source holds for <paramref name="keys"/> (tombstones included) with the replication columns, one
    /// statement per collection, in the caller's transaction; with <paramref name="lockRows"/> the rows stay locked
    /// (<c>FOR UPDATE</c>, in id order) until it ends. Without <paramref name="withContent"/> each state is read without
    /// its document, vector and edges (a content-less upsert carrying the stored hash). Keys the source does not hold
    /// are absent from the result.
    /// </summary>
    /// <exception cref="SyncStoreException">A stored row cannot be decoded.</exception>
    /// <exception cref="NpgsqlException">The server failed, or a table is missing (not translated: the caller owns the transaction).</exception>
    internal async Task<Dictionary<EntityKey, StoredState>> ReadStatesWithinAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<EntityKey> keys, bool lockRows, bool withContent, CancellationToken cancellationToken)
    {
        var result = new Dictionary<EntityKey, StoredState>(keys.Count);
        foreach (var (collection, ids) in GroupIds(keys))
        {
            await ReadCollectionStatesAsync(connection, transaction, collection, ids, lockRows, withContent, result, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Reads what the source holds for <paramref name="keys"/> (tombstones included), in key order; keys it never held are left out.</summary>
    /// <exception cref="SyncStoreException">The server failed, or a stored row cannot be decoded.</exception>
    internal async Task<IReadOnlyList<StoredState>> ReadStatesAsync(IReadOnlyList<EntityKey> keys, CancellationToken cancellationToken)
    {
        var found = new Dictionary<EntityKey, StoredState>(keys.Count);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var (collection, ids) in GroupIds(keys))
            {
                try
                {
                    await ReadCollectionStatesAsync(connection, null, collection, ids, lockRows: false, withContent: true, found, cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
                {
                    // Each statement runs on its own here, so a collection without a table simply holds nothing.
                    _tables.Forget(collection);
                }
            }
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "read states", keys.Count == 1 ? keys[0] : null);
        }

        var result = new List<StoredState>(found.Count);
        foreach (var key in keys)
        {
            if (found.TryGetValue(key, out var state))
            {
                result.Add(state);
            }
        }

        return result;
    }

    /// <summary>
    /// Reads a page of the digests of a collection's states (tombstones included) whose bucket is in
    /// <paramref name="range"/>, in (bucket, id) order after <paramref name="afterId"/>, over the (bucket, id) index.
    /// </summary>
    /// <exception cref="SyncStoreException">The server failed.</exception>
    internal async Task<IReadOnlyList<StateDigest>> ScanStateDigestsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken)
    {
        var afterBucket = afterId is null ? -1L : KeyHash.Bucket(new EntityKey(collection, afterId));
        var page = new List<StateDigest>(Math.Min(limit, 4096));
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                $"SELECT id, version, hash, deleted FROM {_tables.Qualified(collection)} WHERE bucket BETWEEN $1 AND $2 AND (bucket, id) > ($3, $4) ORDER BY bucket, id LIMIT $5",
                connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = range.First });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = range.Last });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterBucket });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = afterId ?? string.Empty });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var hash = reader.GetFieldValue<byte[]>(2);
                page.Add(new StateDigest(reader.GetString(0), new HlcTimestamp(reader.GetInt64(1)), hash.Length == 16 ? DocumentCodec.BytesToHash(hash) : UInt128.Zero, reader.GetBoolean(3)));
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            _tables.Forget(collection);
            return [];
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "scan state digests", null);
        }

        return page;
    }

    private async Task ReadCollectionStatesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string collection, string[] ids, bool lockRows, bool withContent, Dictionary<EntityKey, StoredState> destination, CancellationToken cancellationToken)
    {
        // Rows are locked in id order, the order every write of this store takes them in.
        var sql = $"SELECT {(withContent ? StateColumns : HeadColumns)} FROM {_tables.Qualified(collection)} WHERE id = ANY($1)" + (lockRows ? " ORDER BY id FOR UPDATE" : string.Empty);
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = ids });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = ReadState(reader, collection);
            destination[state.Change.Key] = state;
        }
    }

    /// <summary>Decodes one row of <see cref="StateColumns"/>.</summary>
    private StoredState ReadState(NpgsqlDataReader reader, string collection)
    {
        var id = reader.GetString(0);
        EntityKey key;
        try
        {
            key = new EntityKey(collection, id);
        }
        catch (ArgumentException ex)
        {
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} holds a record in {SafeText.Quote(collection)} whose id {SafeText.Quote(id)} is not a valid entity id: {SafeText.Text(ex.Message)}", false, Name, null, "read states", ex);
        }

        try
        {
            var version = new HlcTimestamp(reader.GetInt64(1));
            var change = reader.GetBoolean(3)
                ? EntityChange.Delete(key, version)
                : EntityChange.Upsert(
                    new SyncEntity(
                        key,
                        reader.IsDBNull(4) ? [] : reader.GetFieldValue<byte[]>(4),
                        reader.IsDBNull(5) ? default(ReadOnlyMemory<float>) : reader.GetFieldValue<float[]>(5),
                        DocumentCodec.DecodeEdges(reader.IsDBNull(6) ? null : reader.GetFieldValue<byte[]>(6))),
                    version,
                    DocumentCodec.BytesToHash(reader.GetFieldValue<byte[]>(2)));

            // The stored history may omit the state's own version (a row written here with no history from others).
            var history = VersionVector.ParseJson(reader.IsDBNull(7) ? null : reader.GetString(7)).With(version);
            return new StoredState(change, history, reader.IsDBNull(8) ? null : reader.GetInt32(8));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or System.Text.Json.JsonException)
        {
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} cannot decode the state of {SafeText.Quote(key)}: {SafeText.Text(ex.Message)}", false, Name, key, "read states", ex);
        }
    }

    private static SortedDictionary<string, string[]> GroupIds(IReadOnlyList<EntityKey> keys)
    {
        var byCollection = new SortedDictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (key.IsDefault)
            {
                throw new ArgumentException("Keys must be valid EntityKeys, not default.", nameof(keys));
            }

            if (!byCollection.TryGetValue(key.Collection, out var ids))
            {
                byCollection[key.Collection] = ids = new HashSet<string>(StringComparer.Ordinal);
            }

            ids.Add(key.Id);
        }

        var result = new SortedDictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (collection, ids) in byCollection)
        {
            result[collection] = [.. ids];
        }

        return result;
    }
}
