using System.Runtime.CompilerServices;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.Stores;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>Reads: entities, pages, digests and counts. A collection without a table holds nothing.</summary>
public sealed partial class PostgresDocumentStore
{
    private const int DigestPageSize = 1000;
    private const int IdsPerQuery = 1000;

    /// <summary>
    /// The document to return: the exact bytes written while <c>document</c> still equals them as JSON, otherwise
    /// <c>document</c>'s own rendering (it was edited outside the library, and its projection hash will show it).
    /// </summary>
    private const string DocumentColumn =
        "CASE WHEN document_raw IS NOT NULL AND document = convert_from(document_raw, 'UTF8')::jsonb THEN document_raw ELSE convert_to(document::text, 'UTF8') END";

    private const string AllColumns = "id, version, hash, bucket, " + DocumentColumn + ", vector, edges";

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="key"/> is <c>default</c>.</exception>
    /// <exception cref="SyncStoreException">The server failed, or the stored record cannot be decoded.</exception>
    public async ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken)
    {
        if (key.IsDefault)
        {
            throw new ArgumentException("Key must be a valid EntityKey, not default.", nameof(key));
        }

        var rows = await QueryAsync(
            key.Collection,
            $"SELECT {AllColumns} FROM {{0}} WHERE id = $1 AND NOT deleted",
            [Text(key.Id)],
            "read",
            cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : ToEntity(rows[0], key.Collection);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="collection"/> is not a valid collection name.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is less than 1.</exception>
    /// <exception cref="SyncStoreException">The server failed, or a stored record cannot be decoded.</exception>
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var rows = await QueryAsync(
            collection,
            $"SELECT {AllColumns} FROM {{0}} WHERE id > $1 AND NOT deleted ORDER BY id LIMIT $2",
            [Text(afterId ?? string.Empty), new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = limit }],
            "scan",
            cancellationToken).ConfigureAwait(false);
        return ToEntities(rows, collection);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken) =>
        ScanBucketsAsync(collection, range, afterId, limit, EntityParts.All, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Parts the caller does not use are not read from the server at all.</remarks>
    /// <exception cref="ArgumentException"><paramref name="collection"/> or <paramref name="afterId"/> is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is less than 1.</exception>
    /// <exception cref="SyncStoreException">The server failed, or a stored record cannot be decoded.</exception>
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, EntityParts parts, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (afterId is not null)
        {
            EntityKey.ValidateId(afterId, nameof(afterId));
        }

        var afterBucket = afterId is null ? -1L : KeyHash.Bucket(new EntityKey(collection, afterId));
        var document = (parts & EntityParts.Document) != 0 ? DocumentColumn : "NULL::bytea";
        var vector = (parts & EntityParts.Vector) != 0 ? "vector" : "NULL::real[]";
        var edges = (parts & EntityParts.Edges) != 0 ? "edges" : "NULL::bytea";
        var rows = await QueryAsync(
            collection,
            $"SELECT id, version, hash, bucket, {document}, {vector}, {edges} FROM {{0}} " +
            "WHERE bucket BETWEEN $1 AND $2 AND (bucket, id) > ($3, $4) AND NOT deleted ORDER BY bucket, id LIMIT $5",
            [Bigint(range.First), Bigint(range.Last), Bigint(afterBucket), Text(afterId ?? string.Empty), new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = limit }],
            "scan buckets",
            cancellationToken).ConfigureAwait(false);
        return ToEntities(rows, collection);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="collection"/> is not a valid collection name.</exception>
    /// <exception cref="SyncStoreException">The server failed.</exception>
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentNullException.ThrowIfNull(ids);
        var result = new List<EntityDigest>(ids.Count);
        for (var start = 0; start < ids.Count; start += IdsPerQuery)
        {
            var chunk = new string[Math.Min(IdsPerQuery, ids.Count - start)];
            for (var i = 0; i < chunk.Length; i++)
            {
                chunk[i] = ids[start + i] ?? throw new ArgumentException($"Id at index {start + i} is null.", nameof(ids));
            }

            var rows = await QueryAsync(
                collection,
                $"SELECT {AllColumns} FROM {{0}} WHERE id = ANY($1) AND NOT deleted",
                [new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = chunk }],
                "read digests",
                cancellationToken).ConfigureAwait(false);
            AddDigests(result, rows, collection);
        }

        return result;
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="collection"/> is not a valid collection name.</exception>
    /// <exception cref="SyncStoreException">The server failed.</exception>
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        var afterBucket = -1L;
        var afterId = string.Empty;
        var page = new List<EntityDigest>(DigestPageSize);
        while (true)
        {
            var rows = await QueryAsync(
                collection,
                $"SELECT {AllColumns} FROM {{0}} " +
                "WHERE bucket BETWEEN $1 AND $2 AND (bucket, id) > ($3, $4) AND NOT deleted ORDER BY bucket, id LIMIT $5",
                [Bigint(range.First), Bigint(range.Last), Bigint(afterBucket), Text(afterId), new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = DigestPageSize }],
                "scan digests",
                cancellationToken).ConfigureAwait(false);
            page.Clear();
            AddDigests(page, rows, collection);
            foreach (var digest in page)
            {
                yield return digest;
            }

            if (rows.Count < DigestPageSize)
            {
                yield break;
            }

            afterBucket = rows[^1].Bucket;
            afterId = rows[^1].Id;
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="collection"/> is not a valid collection name.</exception>
    /// <exception cref="SyncStoreException">The server failed.</exception>
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM {_tables.Qualified(collection)} WHERE NOT deleted", connection);
            return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            _tables.Forget(collection);
            return 0;
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "count", null);
        }
    }

    /// <summary>Runs a read with the collection's table in place of <c>{0}</c>; no rows when the table does not exist.</summary>
    private async Task<List<Row>> QueryAsync(string collection, string sqlFormat, NpgsqlParameter[] parameters, string operation, CancellationToken cancellationToken)
    {
        var rows = new List<Row>();
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(string.Format(System.Globalization.CultureInfo.InvariantCulture, sqlFormat, _tables.Qualified(collection)), connection);
            command.Parameters.AddRange(parameters);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add(new Row(
                    reader.GetString(0),
                    reader.GetInt64(1),
                    reader.GetFieldValue<byte[]>(2),
                    reader.GetInt64(3),
                    reader.IsDBNull(4) ? null : reader.GetFieldValue<byte[]>(4),
                    reader.IsDBNull(5) ? null : reader.GetFieldValue<float[]>(5),
                    reader.IsDBNull(6) ? null : reader.GetFieldValue<byte[]>(6)));
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            _tables.Forget(collection);
            return [];
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, operation, null);
        }

        return rows;
    }

    private List<VersionedEntity> ToEntities(List<Row> rows, string collection)
    {
        var entities = new List<VersionedEntity>(rows.Count);
        foreach (var row in rows)
        {
            entities.Add(ToEntity(row, collection));
        }

        return entities;
    }

    private VersionedEntity ToEntity(Row row, string collection)
    {
        EntityKey key;
        try
        {
            key = new EntityKey(collection, row.Id);
        }
        catch (ArgumentException ex)
        {
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} holds a record in {SafeText.Quote(collection)} whose id {SafeText.Quote(row.Id)} is not a valid entity id: {SafeText.Text(ex.Message)}", false, Name, null, "read", ex);
        }

        try
        {
            var entity = new SyncEntity(key, row.Document ?? [], row.Vector ?? default(ReadOnlyMemory<float>), DocumentCodec.DecodeEdges(row.Edges));
            return new VersionedEntity(entity, new HlcTimestamp(row.Version), DocumentCodec.BytesToHash(row.Hash));
        }
        catch (FormatException ex)
        {
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} cannot decode {SafeText.Quote(key)}: {SafeText.Text(ex.Message)}", false, Name, key, "read", ex);
        }
    }

    /// <summary>
    /// Adds the digests of rows, computing each projection hash from what the table really holds. A row whose edges or
    /// hash no longer decode (edited outside the library) gets a projection hash of its raw columns, which matches no
    /// entity, so the checker reports it as corrupted; a row whose id is not a valid entity id cannot be reported under
    /// a key and is left out.
    /// </summary>
    private static void AddDigests(List<EntityDigest> digests, List<Row> rows, string collection)
    {
        foreach (var row in rows)
        {
            if (!TryKey(collection, row.Id, out var key))
            {
                continue;
            }

            UInt128 projection;
            try
            {
                var entity = new SyncEntity(key, row.Document ?? [], row.Vector ?? default(ReadOnlyMemory<float>), DocumentCodec.DecodeEdges(row.Edges));
                projection = ProjectionHash.Compute(entity, StoreKind.Document);
            }
            catch (FormatException)
            {
                projection = Hash128.Hash(row.Edges ?? []) ^ Hash128.Hash(row.Document ?? []);
            }

            var recorded = row.Hash.Length == 16 ? DocumentCodec.BytesToHash(row.Hash) : UInt128.Zero;
            digests.Add(new EntityDigest(key, new HlcTimestamp(row.Version), recorded, projection, (uint)row.Bucket));
        }
    }

    private static bool TryKey(string collection, string id, out EntityKey key)
    {
        try
        {
            key = new EntityKey(collection, id);
            return true;
        }
        catch (ArgumentException)
        {
            key = default;
            return false;
        }
    }

    private static NpgsqlParameter Text(string value) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = value };

    private static NpgsqlParameter Bigint(long value) => new() { NpgsqlDbType = NpgsqlDbType.Bigint, Value = value };

    /// <summary>One stored record as read; the document, vector and edges are null when not selected or absent.</summary>
    private sealed record Row(string Id, long Version, byte[] Hash, long Bucket, byte[]? Document, float[]? Vector, byte[]? Edges);
}
