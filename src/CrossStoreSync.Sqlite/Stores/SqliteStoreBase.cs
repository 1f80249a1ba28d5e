using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Stores;

/// <summary>
/// What the three SQLite stores share: a table per store kind with the <c>_sync</c> columns (version, hash, bucket,
/// deleted), a version-guarded write path through the group-committing writer, and digest reads paged by
/// (bucket, id) over an index so a bucket range costs only its own rows.
/// </summary>
public abstract class SqliteStoreBase : ISyncStore, ITombstoneStore, IAsyncDisposable
{
    private const int DigestPageSize = 1000;
    private const int IdsPerQuery = 500;
    private readonly bool _ownsDatabase;

    private protected SqliteStoreBase(string name, StoreKind kind, SqliteDatabase database, bool ownsDatabase)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Kind = kind;
        Database = database;
        _ownsDatabase = ownsDatabase;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public StoreKind Kind { get; }

    /// <summary>The database file.</summary>
    public string DatabasePath => Database.Path;

    private protected SqliteDatabase Database { get; }

    /// <summary>The table holding one row per entity.</summary>
    private protected abstract string Table { get; }

    /// <summary>SQL condition for rows that count as live records.</summary>
    private protected abstract string LiveCondition { get; }

    /// <summary>Extra columns selected for projection hashes, each prefixed with a comma.</summary>
    private protected abstract string ProjectionColumns { get; }

    /// <summary>Creates the store's tables. Runs on the writer.</summary>
    private protected abstract void CreateSchema(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<CollectionDefinition> collections);

    /// <summary>Applies changes inside the writer's transaction. Throws to reject the whole batch.</summary>
    private protected abstract void ApplyInTransaction(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes);

    /// <summary>Computes the projection hash of each row from what the store really holds.</summary>
    private protected abstract void ComputeProjections(SqliteConnection connection, string collection, List<DigestRow> rows);

    /// <inheritdoc />
    public async ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        await Database.WriteAsync((c, t) =>
        {
            CreateSchema(c, t, collections);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0)
        {
            return;
        }

        ValidateChanges(changes);
        try
        {
            await Database.WriteAsync((c, t) =>
            {
                ApplyInTransaction(c, t, changes);
                return true;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "apply");
        }
    }

    /// <summary>Rejects changes this store cannot hold, before anything is written.</summary>
    private protected virtual void ValidateChanges(IReadOnlyList<EntityChange> changes)
    {
        foreach (var change in changes)
        {
            if (change is null)
            {
                throw new SyncStoreException($"Store {SafeText.Quote(Name)} received a null change.", false, Name, null, "apply");
            }

            if (change.Kind == ChangeKind.Upsert && change.Entity is null)
            {
                throw new SyncStoreException($"Upsert of {SafeText.Quote(change.Key)} carries no entity.", false, Name, change.Key.IsDefault ? null : change.Key, "apply");
            }

            if (change.Key.IsDefault)
            {
                throw new SyncStoreException("A change has a default key.", false, Name, null, "apply");
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        EntityKey.ValidateCollection(collection, nameof(collection));
        var result = new List<EntityDigest>(ids.Count);
        await using var connection = Database.OpenRead();
        for (var start = 0; start < ids.Count; start += IdsPerQuery)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var command = connection.CreateCommand();
            var sql = new StringBuilder($"SELECT id, version, hash, bucket{ProjectionColumns} FROM {Table} WHERE collection = $c AND {LiveCondition} AND id IN (");
            command.Parameters.AddWithValue("$c", collection);
            var end = Math.Min(ids.Count, start + IdsPerQuery);
            for (var i = start; i < end; i++)
            {
                var p = "$p" + (i - start).ToString(CultureInfo.InvariantCulture);
                sql.Append(i == start ? p : "," + p);
                command.Parameters.AddWithValue(p, ids[i]);
            }

            command.CommandText = sql.Append(')').ToString();
            var rows = ReadRows(command);
            ComputeProjections(connection, collection, rows);
            foreach (var row in rows)
            {
                result.Add(row.ToDigest(collection));
            }
        }

        return result;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        long afterBucket = -1;
        var afterId = string.Empty;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            List<DigestRow> rows;
            await using (var connection = Database.OpenRead())
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    $"SELECT id, version, hash, bucket{ProjectionColumns} FROM {Table} " +
                    $"WHERE collection = $c AND bucket BETWEEN $first AND $last AND (bucket, id) > ($ab, $aid) AND {LiveCondition} " +
                    "ORDER BY bucket, id LIMIT $limit";
                command.Parameters.AddWithValue("$c", collection);
                command.Parameters.AddWithValue("$first", (long)range.First);
                command.Parameters.AddWithValue("$last", (long)range.Last);
                command.Parameters.AddWithValue("$ab", afterBucket);
                command.Parameters.AddWithValue("$aid", afterId);
                command.Parameters.AddWithValue("$limit", DigestPageSize);
                rows = ReadRows(command);
                ComputeProjections(connection, collection, rows);
            }

            foreach (var row in rows)
            {
                yield return row.ToDigest(collection);
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
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        await using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {Table} WHERE collection = $c AND {LiveCondition}";
        command.Parameters.AddWithValue("$c", collection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        try
        {
            return await Database.WriteAsync((c, t) => RemoveByOrigin(c, t, collection, origin), cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "remove by origin");
        }
    }

    /// <summary>Deletes the rows tagged with an origin inside the writer's transaction; returns how many.</summary>
    private protected virtual long RemoveByOrigin(SqliteConnection connection, SqliteTransaction transaction, string collection, string origin)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"DELETE FROM {Table} WHERE collection = $c AND origin = $o";
        command.Parameters.AddWithValue("$c", collection);
        command.Parameters.AddWithValue("$o", origin);
        return command.ExecuteNonQuery();
    }

    /// <summary>
    /// Extra condition a tombstone must meet to be purged (the coupled document store keeps a tombstone while the log
    /// still holds entries of its key: those entries read their payload from the row). Empty by default.
    /// </summary>
    private protected virtual string PurgeCondition => string.Empty;

    /// <inheritdoc />
    /// <remarks>
    /// Uses a partial index on the tombstones, so a purge reads only tombstones. When a purge run ends (fewer than
    /// <paramref name="maxCount"/> removed) the freed pages are given back to the file system.
    /// </remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        int purged;
        try
        {
            purged = await Database.WriteAsync((c, t) =>
            {
                using var command = c.CreateCommand();
                command.Transaction = t;
                command.CommandText =
                    $"DELETE FROM {Table} WHERE rowid IN (SELECT s.rowid FROM {Table} s INDEXED BY {Table}_tombstones " +
                    $"WHERE s.collection = $c AND s.deleted = 1 AND s.version < $v{PurgeCondition} LIMIT $n)";
                command.Parameters.AddWithValue("$c", collection);
                command.Parameters.AddWithValue("$v", olderThan.Value);
                command.Parameters.AddWithValue("$n", maxCount);
                return command.ExecuteNonQuery();
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "purge tombstones");
        }

        if (purged > 0 && purged < maxCount)
        {
            await Database.ReleaseFreePagesAsync(cancellationToken).ConfigureAwait(false);
        }

        return purged;
    }

    /// <summary>The partial index that makes tombstone purges read only tombstones.</summary>
    private protected static string TombstoneIndexSql(string table) =>
        $"CREATE INDEX IF NOT EXISTS {table}_tombstones ON {table} (collection, version) WHERE deleted = 1;";

    /// <summary>The size of the store's database file and its write-ahead log, in bytes.</summary>
    public long FileBytes() => Database.FileBytes();

    /// <summary>Closes the database when this store owns it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_ownsDatabase)
        {
            await Database.DisposeAsync().ConfigureAwait(false);
        }

        GC.SuppressFinalize(this);
    }

    private protected SyncStoreException Translate(SqliteException ex, string operation) =>
        new($"SQLite store {SafeText.Quote(Name)} failed to {operation}: {SafeText.Text(ex.Message)}", isTransient: SqliteDatabase.IsTransient(ex), Name, null, operation, ex);

    private static List<DigestRow> ReadRows(SqliteCommand command)
    {
        var rows = new List<DigestRow>();
        using var reader = command.ExecuteReader();
        var extra = reader.FieldCount - 4;
        while (reader.Read())
        {
            var row = new DigestRow(reader.GetString(0), reader.GetInt64(1), SqliteCodec.BlobToHash((byte[])reader[2]), (uint)reader.GetInt64(3));
            if (extra > 0)
            {
                row.A = reader.IsDBNull(4) ? null : (byte[])reader[4];
            }

            if (extra > 1)
            {
                row.B = reader.IsDBNull(5) ? null : (byte[])reader[5];
            }

            if (extra > 2)
            {
                row.C = reader.IsDBNull(6) ? null : (byte[])reader[6];
            }

            rows.Add(row);
        }

        return rows;
    }

    /// <summary>The <c>$c, $id, $v, $h, $b, $d, $o</c> parameters every store's upsert binds: key and <c>_sync</c> columns.</summary>
    private protected sealed class SyncParameters
    {
        private readonly SqliteParameter _collection;
        private readonly SqliteParameter _id;
        private readonly SqliteParameter _version;
        private readonly SqliteParameter _hash;
        private readonly SqliteParameter _bucket;
        private readonly SqliteParameter _deleted;
        private readonly SqliteParameter _origin;

        public SyncParameters(SqliteCommand command)
        {
            _collection = command.Parameters.Add("$c", SqliteType.Text);
            _id = command.Parameters.Add("$id", SqliteType.Text);
            _version = command.Parameters.Add("$v", SqliteType.Integer);
            _hash = command.Parameters.Add("$h", SqliteType.Blob);
            _bucket = command.Parameters.Add("$b", SqliteType.Integer);
            _deleted = command.Parameters.Add("$d", SqliteType.Integer);
            _origin = command.Parameters.Add("$o", SqliteType.Text);
        }

        /// <summary>Binds a change's key and sync metadata; returns its bucket.</summary>
        public long Bind(EntityChange change)
        {
            var bucket = (long)Hashing.KeyHash.Bucket(change.Key);
            _collection.Value = change.Key.Collection;
            _id.Value = change.Key.Id;
            _version.Value = change.Version.Value;
            _hash.Value = SqliteCodec.HashToBlob(change.ContentHash);
            _bucket.Value = bucket;
            _deleted.Value = change.Entity is null ? 1 : 0;
            _origin.Value = (object?)change.Origin ?? DBNull.Value;
            return bucket;
        }
    }

    /// <summary>A row read for a digest; A/B/C hold the store's projection columns.</summary>
    private protected sealed class DigestRow(string id, long version, UInt128 hash, uint bucket)
    {
        public string Id { get; } = id;

        public long Version { get; } = version;

        public UInt128 Hash { get; } = hash;

        public uint Bucket { get; } = bucket;

        public byte[]? A { get; set; }

        public byte[]? B { get; set; }

        public byte[]? C { get; set; }

        public UInt128 Projection { get; set; }

        public EntityDigest ToDigest(string collection) => new(EntityKey.Trusted(collection, Id), new HlcTimestamp(Version), Hash, Projection, Bucket);
    }
}
