using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Http;
using CrossStoreSync.SurrealDb.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.SurrealDb.Stores;

/// <summary>
/// A document store in SurrealDB 2.x or 3.x over its HTTP API (<c>POST /sql</c>): one table per collection, records
/// keyed by the entity id, the document kept as a native object (<c>data</c>) with vector, edges and <c>_sync</c>
/// metadata beside it, versioned tombstones for deletes, and indexes on <c>_sync.bucket</c> and <c>_sync.pos</c>.
/// </summary>
/// <remarks>
/// <para>
/// Writes are batched as multi-statement transactions of version-guarded <c>UPSERT … WHERE</c> statements, so applying
/// a change twice, or an older one, changes nothing. Every value reaches SurrealQL as an escaped literal
/// (see PROTOCOLS.md §3.3 for why JSON-RPC parameters would corrupt strings that look like record ids or datetimes).
/// </para>
/// <para>
/// Thread-safe. Errors are <see cref="SyncStoreException"/>s; transient ones (5xx, connection failures, timeouts,
/// transaction conflicts) are retried inside the store first (<see cref="SurrealDbOptions.TransientRetryAttempts"/>).
/// </para>
/// </remarks>
public sealed class SurrealDbDocumentStore : IDocumentStore, ITombstoneStore
{
    private readonly SurrealDbOptions _options;
    private readonly SurrealDbClient _client;
    private readonly SurrealDbSchema _schema;

    /// <summary>Creates a store that sends its requests through <paramref name="httpClient"/>.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="httpClient">The client (for example from <c>IHttpClientFactory</c>); its base address is not used.</param>
    /// <param name="logger">Logs retries; null for none.</param>
    /// <param name="timeProvider">Time for retry delays and timeouts; null for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public SurrealDbDocumentStore(SurrealDbOptions options, HttpClient httpClient, ILogger<SurrealDbDocumentStore>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(httpClient);
        options.Validate();
        _options = options;
        var log = (ILogger?)logger ?? NullLogger.Instance;
        _client = new SurrealDbClient(httpClient, options, log, timeProvider ?? TimeProvider.System);
        _schema = new SurrealDbSchema(_client, options, log);
    }

    /// <inheritdoc />
    public string Name => _options.StoreName;

    /// <summary>The HTTP client the store sends its SurrealQL through (shared with the change feed).</summary>
    internal SurrealDbClient Client => _client;

    /// <summary>Tables and the server's dialect (shared with the change feed).</summary>
    internal SurrealDbSchema Schema => _schema;

    /// <inheritdoc />
    public StoreKind Kind => StoreKind.Document;

    /// <summary>The server's major version in use (2 or 3) once known; null before the first request.</summary>
    public int? ServerMajorVersion => _schema.ServerMajorVersion;

    /// <inheritdoc />
    /// <remarks>Asks the server's version (unless configured) and defines every collection's table and indexes (<c>IF NOT EXISTS</c>).</remarks>
    public async ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        await _schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var collection in collections)
        {
            ArgumentNullException.ThrowIfNull(collection);
            await _schema.EnsureTableAsync(collection.Name, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0)
        {
            return;
        }

        Validate(changes);
        var function = await _schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        string? previous = null;
        foreach (var change in changes)
        {
            // Batches are usually of one collection: ask once per run of equal names.
            if (!string.Equals(previous, change.Key.Collection, StringComparison.Ordinal))
            {
                previous = change.Key.Collection;
                await _schema.EnsureTableAsync(previous, cancellationToken).ConfigureAwait(false);
            }
        }

        // Every request is built before the first is sent, so a change that cannot be encoded rejects the batch
        // before anything of it is written.
        var requests = new List<(string Sql, RequestContext Context)>((changes.Count / _options.MaxChangesPerRequest) + 1);
        for (var start = 0; start < changes.Count; start += _options.MaxChangesPerRequest)
        {
            var end = Math.Min(changes.Count, start + _options.MaxChangesPerRequest);
            requests.Add((BuildApply(changes, start, end, function), new RequestContext(Name, "apply", end - start == 1 ? changes[start].Key : null)));
        }

        foreach (var (sql, context) in requests)
        {
            using var response = await _client.QueryAsync(sql, context, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Builds one transaction: a version-guarded UPSERT per change (a delete writes a tombstone).</summary>
    internal string BuildApply(IReadOnlyList<EntityChange> changes, int start, int end, string recordFunction)
    {
        var sql = new StringBuilder(256 * (end - start));
        sql.Append("BEGIN TRANSACTION;\n");
        for (var i = start; i < end; i++)
        {
            var change = changes[i];
            sql.Append("UPSERT ");
            AppendRecord(sql, recordFunction, change.Key).Append(" CONTENT ");
            try
            {
                SurrealRecordCodec.AppendContent(sql, change);
            }
            catch (Exception ex) when (ex is JsonException or ArgumentException)
            {
                throw new SyncStoreException($"SurrealDB store {SafeText.Quote(Name)} cannot store {SafeText.Quote(change.Key)}: {SafeText.Text(ex.Message)}", false, Name, change.Key, "apply", ex);
            }

            // The guard: a record is replaced only by a newer version. A missing record has no _sync and is created.
            sql.Append(" WHERE _sync.version IS NONE OR _sync.version < ");
            SurrealQl.Integer(sql, change.Version.Value).Append(" RETURN NONE;\n");
        }

        return sql.Append("COMMIT TRANSACTION;").ToString();
    }

    /// <inheritdoc />
    public async ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken)
    {
        if (key.IsDefault)
        {
            throw new ArgumentException("Key must be a valid EntityKey, not default.", nameof(key));
        }

        var function = await _schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        var sql = new StringBuilder("SELECT ").Append(SurrealRecordCodec.Projection).Append(" FROM [");
        AppendRecord(sql, function, key).Append("] WHERE ").Append(SurrealRecordCodec.Live).Append(';');
        var context = new RequestContext(Name, "read", key);
        using var response = await QueryReadAsync(sql.ToString(), context, cancellationToken).ConfigureAwait(false);
        if (response is null)
        {
            return null;
        }

        foreach (var row in response[0].Result.EnumerateArray())
        {
            var decoded = DecodeOrThrow(row, key.Collection, context);
            return new VersionedEntity(decoded.Entity, decoded.Version, decoded.RecordedHash);
        }

        return null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);

        // A record range starting after the last id reads only this page from the primary key (no sort, no skip).
        var sql = new StringBuilder("SELECT ").Append(SurrealRecordCodec.Projection).Append(" FROM ");
        if (afterId is null)
        {
            SurrealQl.Table(sql, collection);
        }
        else
        {
            SurrealQl.RecordLiteral(sql, collection, afterId).Append(">..");
        }

        sql.Append(" WHERE ").Append(SurrealRecordCodec.Live).Append(" ORDER BY id LIMIT ");
        SurrealQl.Integer(sql, limit).Append(';');
        return await ReadEntitiesAsync(sql.ToString(), collection, "scan", cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var after = afterId is null ? null : SurrealRecordCodec.Position(KeyHash.Bucket(new EntityKey(collection, afterId)), afterId);
        var sql = BuildBucketPage(collection, range, after, limit);
        return await ReadEntitiesAsync(sql, collection, "scan buckets", cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentNullException.ThrowIfNull(ids);
        var result = new List<EntityDigest>(ids.Count);
        if (ids.Count == 0)
        {
            return result;
        }

        var function = await _schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        var context = new RequestContext(Name, "read digests", null);
        for (var start = 0; start < ids.Count; start += _options.ReadPageSize)
        {
            var end = Math.Min(ids.Count, start + _options.ReadPageSize);
            var sql = new StringBuilder("SELECT ").Append(SurrealRecordCodec.Projection).Append(" FROM [");
            for (var i = start; i < end; i++)
            {
                if (i > start)
                {
                    sql.Append(',');
                }

                AppendRecord(sql, function, new EntityKey(collection, ids[i]));
            }

            sql.Append("] WHERE ").Append(SurrealRecordCodec.Live).Append(';');
            using var response = await QueryReadAsync(sql.ToString(), context, cancellationToken).ConfigureAwait(false);
            if (response is null)
            {
                return result;
            }

            foreach (var row in response[0].Result.EnumerateArray())
            {
                result.Add(ToDigest(row, collection));
            }
        }

        return result;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        var context = new RequestContext(Name, "scan digests", null);
        string? after = null;
        while (true)
        {
            var sql = BuildBucketPage(collection, range, after, _options.ReadPageSize);
            var page = new List<EntityDigest>(_options.ReadPageSize);
            string? lastPosition = null;
            using (var response = await QueryReadAsync(sql, context, cancellationToken).ConfigureAwait(false))
            {
                if (response is null)
                {
                    yield break;
                }

                foreach (var row in response[0].Result.EnumerateArray())
                {
                    page.Add(ToDigest(row, collection));
                    lastPosition = row.TryGetProperty("_sync", out var s) && s.TryGetProperty("pos", out var p) ? p.GetString() : null;
                }
            }

            foreach (var digest in page)
            {
                yield return digest;
            }

            if (page.Count < _options.ReadPageSize)
            {
                yield break;
            }

            after = lastPosition ?? throw context.Error("read a record without _sync.pos; cannot continue the scan.", isTransient: false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        var sql = new StringBuilder("SELECT count() FROM ");
        SurrealQl.Table(sql, collection).Append(" WHERE ").Append(SurrealRecordCodec.Live).Append(" GROUP ALL;");
        using var response = await QueryReadAsync(sql.ToString(), new RequestContext(Name, "count", null), cancellationToken).ConfigureAwait(false);
        return response is null ? 0 : ReadCount(response[0].Result);
    }

    /// <inheritdoc />
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        await _schema.EnsureTableAsync(collection, cancellationToken).ConfigureAwait(false);

        // Count and delete in one transaction, so the number returned is the number removed.
        var sql = new StringBuilder("BEGIN TRANSACTION;\nSELECT count() FROM ");
        SurrealQl.Table(sql, collection).Append(" WHERE _sync.origin = ");
        SurrealQl.String(sql, origin).Append(" GROUP ALL;\nDELETE ");
        SurrealQl.Table(sql, collection).Append(" WHERE _sync.origin = ");
        SurrealQl.String(sql, origin).Append(";\nCOMMIT TRANSACTION;");
        using var response = await _client.QueryAsync(sql.ToString(), new RequestContext(Name, "remove by origin", null), cancellationToken).ConfigureAwait(false);
        return ReadCount(FirstResult(response));
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction: the ids of up to <paramref name="maxCount"/> tombstones older than <paramref name="olderThan"/>
    /// (over the <c>css_tomb</c> index), then a delete of exactly those records; the deleted records' count is returned.
    /// </remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        await _schema.EnsureTableAsync(collection, cancellationToken).ConfigureAwait(false);
        var sql = new StringBuilder("BEGIN TRANSACTION;\nLET $gone = (SELECT VALUE id FROM ");
        SurrealQl.Table(sql, collection).Append(" WHERE _sync.deleted = true AND _sync.version < ");
        SurrealQl.Integer(sql, olderThan.Value).Append(" LIMIT ");
        SurrealQl.Integer(sql, maxCount).Append(");\nDELETE $gone RETURN BEFORE;\nCOMMIT TRANSACTION;");
        using var response = await _client.QueryAsync(sql.ToString(), new RequestContext(Name, "purge tombstones", null), cancellationToken).ConfigureAwait(false);
        var deleted = FirstResult(response);
        return deleted.ValueKind == JsonValueKind.Array ? deleted.GetArrayLength() : 0;
    }

    private static JsonElement FirstResult(SurrealResponse response)
    {
        // 2.x and 3.x answer BEGIN/COMMIT with items of their own or not at all; the first array result is the count.
        for (var i = 0; i < response.Count; i++)
        {
            if (response[i].Result.ValueKind == JsonValueKind.Array)
            {
                return response[i].Result;
            }
        }

        return default;
    }

    private static long ReadCount(JsonElement result)
    {
        if (result.ValueKind == JsonValueKind.Array)
        {
            foreach (var row in result.EnumerateArray())
            {
                return row.TryGetProperty("count", out var c) && c.TryGetInt64(out var n) ? n : 0;
            }
        }

        return 0;
    }

    private string BuildBucketPage(string collection, BucketRange range, string? afterPosition, int limit)
    {
        // (bucket, id) order is _sync.pos order, so one index range serves every page; the bucket bounds keep a
        // position outside the range (a caller's afterId from elsewhere) from leaking other buckets in.
        var sql = new StringBuilder("SELECT ").Append(SurrealRecordCodec.Projection).Append(", _sync.pos FROM ");
        SurrealQl.Table(sql, collection).Append(" WHERE _sync.pos ");
        if (afterPosition is null)
        {
            sql.Append(">= ");
            SurrealQl.String(sql, SurrealRecordCodec.BucketStart(range.First));
        }
        else
        {
            sql.Append("> ");
            SurrealQl.String(sql, afterPosition);
        }

        sql.Append(" AND _sync.bucket >= ");
        SurrealQl.Integer(sql, range.First).Append(" AND _sync.bucket <= ");
        SurrealQl.Integer(sql, range.Last).Append(" AND ").Append(SurrealRecordCodec.Live).Append(" ORDER BY _sync.pos LIMIT ");
        SurrealQl.Integer(sql, limit).Append(';');
        return sql.ToString();
    }

    private async ValueTask<IReadOnlyList<VersionedEntity>> ReadEntitiesAsync(string sql, string collection, string operation, CancellationToken cancellationToken)
    {
        var context = new RequestContext(Name, operation, null);
        using var response = await QueryReadAsync(sql, context, cancellationToken).ConfigureAwait(false);
        if (response is null)
        {
            return [];
        }

        var result = response[0].Result;
        var page = new List<VersionedEntity>(result.GetArrayLength());
        foreach (var row in result.EnumerateArray())
        {
            var decoded = DecodeOrThrow(row, collection, context);
            page.Add(new VersionedEntity(decoded.Entity, decoded.Version, decoded.RecordedHash));
        }

        return page;
    }

    /// <summary>Runs a single read statement; null when its table does not exist yet (3.x reports that as an error).</summary>
    private async Task<SurrealResponse?> QueryReadAsync(string sql, RequestContext context, CancellationToken cancellationToken)
    {
        var response = await _client.QueryAsync(sql, context, allowStatementErrors: true, cancellationToken).ConfigureAwait(false);
        var first = response[0];
        if (first.IsOk && first.Result.ValueKind == JsonValueKind.Array)
        {
            return response;
        }

        using (response)
        {
            if (first.IsTableMissing)
            {
                return null;
            }

            throw first.IsOk
                ? context.Error($"returned a {first.Result.ValueKind} where an array of records was expected.", isTransient: false)
                : first.ToException(context, 0);
        }
    }

    private static SurrealRecordCodec.Row DecodeOrThrow(JsonElement row, string collection, RequestContext context)
    {
        try
        {
            return SurrealRecordCodec.Decode(row, collection);
        }
        catch (FormatException ex)
        {
            throw context.Error($"read a record it cannot decode (edited outside the library?): {SafeText.Text(ex.Message)}", isTransient: false, ex);
        }
    }

    private static EntityDigest ToDigest(JsonElement row, string collection)
    {
        try
        {
            return SurrealRecordCodec.ToDigest(SurrealRecordCodec.Decode(row, collection));
        }
        catch (FormatException)
        {
            // A record edited into a shape the library cannot read is drift, and the checker must see it, not crash.
            return SurrealRecordCodec.ToCorruptDigest(row, collection)
                ?? throw new SyncStoreException($"SurrealDB store holds a record in {SafeText.Quote(collection)} whose key is not a valid entity id: {SafeText.Quote(row.GetRawText())}", false, null, null, "read digests");
        }
    }

    private StringBuilder AppendRecord(StringBuilder sql, string function, EntityKey key)
    {
        sql.Append(function).Append('(');
        SurrealQl.String(sql, key.Collection).Append(',');
        return SurrealQl.String(sql, key.Id).Append(')');
    }

    private void Validate(IReadOnlyList<EntityChange> changes)
    {
        foreach (var change in changes)
        {
            if (change is null)
            {
                throw new SyncStoreException($"Store {SafeText.Quote(Name)} received a null change.", false, Name, null, "apply");
            }

            if (change.Key.IsDefault)
            {
                throw new SyncStoreException("A change has a default key.", false, Name, null, "apply");
            }

            if (change.Kind == ChangeKind.Upsert && change.Entity is null)
            {
                throw new SyncStoreException($"Upsert of {SafeText.Quote(change.Key)} carries no entity.", false, Name, change.Key, "apply");
            }
        }
    }
}
