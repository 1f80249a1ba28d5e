using CrossStoreSync.Errors;

using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Stores;

/// <summary>
/// A document store in a SQLite file: table <c>documents</c> with the document (BLOB, exact bytes), vector (float32
/// little-endian BLOB), edges and the <c>_sync</c> columns; deletes leave a versioned tombstone. Thread-safe.
/// </summary>
public sealed class SqliteDocumentStore : SqliteStoreBase, IDocumentStore
{
    /// <summary>Opens (creating if needed) a document store in its own database file.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="name">The store's name. <value>Default <c>documents</c>.</value></param>
    /// <param name="durable">Whether every commit is fsync'd (<c>synchronous=FULL</c>). <value>Default true.</value></param>
    public SqliteDocumentStore(string path, string name = "documents", bool durable = true)
        : base(name, StoreKind.Document, new SqliteDatabase(path, durable), ownsDatabase: true)
    {
    }

    internal SqliteDocumentStore(SqliteDatabase database, string name, bool coupledToLog)
        : base(name, StoreKind.Document, database, ownsDatabase: false)
    {
        _coupledToLog = coupledToLog;
    }

    private readonly bool _coupledToLog;

    // Log entries appended with the source write carry no payload and read it from this row: while the log still holds
    // an entry of the key (entries are kept KeepAppliedFor), its tombstone stays.
    private protected override string PurgeCondition => _coupledToLog
        ? " AND NOT EXISTS (SELECT 1 FROM log_entries l WHERE l.collection = s.collection AND l.id = s.id)"
        : string.Empty;

    private protected override string Table => "documents";

    private protected override string LiveCondition => "deleted = 0";

    private protected override string ProjectionColumns => ", document, vector, edges";

    internal static void CreateTables(SqliteConnection connection, SqliteTransaction transaction)
    {
        SqliteDatabase.Execute(connection, """
            CREATE TABLE IF NOT EXISTS documents (
                collection TEXT NOT NULL,
                id TEXT NOT NULL,
                version INTEGER NOT NULL,
                hash BLOB NOT NULL,
                bucket INTEGER NOT NULL,
                deleted INTEGER NOT NULL,
                document BLOB,
                vector BLOB,
                edges BLOB,
                origin TEXT,
                vv TEXT,
                from_node INTEGER,
                UNIQUE (collection, id));
            CREATE INDEX IF NOT EXISTS documents_bucket ON documents (collection, bucket, id);
            """ + TombstoneIndexSql("documents"), transaction);

        // Files created before replication between nodes existed lack the causal-history columns; both start empty,
        // which reads as "written on this node, no history from others" — exactly what such a file holds.
        using var columns = connection.CreateCommand();
        columns.Transaction = transaction;
        columns.CommandText = "SELECT name FROM pragma_table_info('documents')";
        var present = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = columns.ExecuteReader())
        {
            while (reader.Read())
            {
                present.Add(reader.GetString(0));
            }
        }

        if (!present.Contains("vv"))
        {
            SqliteDatabase.Execute(connection, "ALTER TABLE documents ADD COLUMN vv TEXT;", transaction);
        }

        if (!present.Contains("from_node"))
        {
            SqliteDatabase.Execute(connection, "ALTER TABLE documents ADD COLUMN from_node INTEGER;", transaction);
        }
    }

    private protected override void CreateSchema(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<CollectionDefinition> collections) =>
        CreateTables(connection, transaction);

    internal void ApplyWithin(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes)
    {
        ValidateChanges(changes);
        ApplyInTransaction(connection, transaction, changes);
    }

    /// <summary>
    /// Applies a write made on this node; a change the version guard refuses (a state received from another node after
    /// the change took its version is newer) is given a new version by <paramref name="restamp"/> and applied on top.
    /// </summary>
    internal void ApplyLocalWithin(SqliteConnection connection, SqliteTransaction transaction, EntityChange[] changes, Func<EntityChange, EntityChange> restamp)
    {
        ValidateChanges(changes);
        using var upsert = new LocalUpsert(connection, transaction);
        for (var i = 0; i < changes.Length; i++)
        {
            if (upsert.Execute(changes[i]) == 0)
            {
                changes[i] = restamp(changes[i]);
                if (upsert.Execute(changes[i]) == 0)
                {
                    throw new InvalidOperationException($"The source refused {SafeText.Quote(changes[i].Key)} at the new version {changes[i].Version}; the clock did not observe the stored version.");
                }
            }
        }
    }

    private protected override void ApplyInTransaction(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes)
    {
        using var upsert = new LocalUpsert(connection, transaction);
        foreach (var change in changes)
        {
            upsert.Execute(change);
        }
    }

    /// <summary>Binds the document columns of a change (key and <c>_sync</c> columns included).</summary>
    internal sealed class DocumentParameters
    {
        private readonly SyncParameters _sync;
        private readonly SqliteParameter _document;
        private readonly SqliteParameter _vector;
        private readonly SqliteParameter _edges;

        public DocumentParameters(SqliteCommand command)
        {
            _sync = new SyncParameters(command);
            _document = command.Parameters.Add("$doc", SqliteType.Blob);
            _vector = command.Parameters.Add("$vec", SqliteType.Blob);
            _edges = command.Parameters.Add("$edges", SqliteType.Blob);
        }

        public void Bind(EntityChange change)
        {
            _sync.Bind(change);
            var entity = change.Entity;
            _document.Value = entity is null ? DBNull.Value : entity.Document.ToArray();
            _vector.Value = (object?)SqliteCodec.VectorToBlob(entity?.Vector ?? default) ?? DBNull.Value;
            _edges.Value = entity is null ? DBNull.Value : (object?)SqliteCodec.EdgesToBlob(entity.Edges) ?? DBNull.Value;
        }
    }

    /// <summary>The version-guarded upsert of a change written on this node.</summary>
    private sealed class LocalUpsert : IDisposable
    {
        private readonly SqliteCommand _command;
        private readonly DocumentParameters _parameters;

        public LocalUpsert(SqliteConnection connection, SqliteTransaction transaction)
        {
            _command = connection.CreateCommand();
            _command.Transaction = transaction;

            // The causal history (vv) of the replaced state plus that state's own version becomes the history of the
            // new one (JSON node → version, DESIGN.md §7). A node that only ever overwrites its own states keeps none.
            _command.CommandText = """
                INSERT INTO documents (collection, id, version, hash, bucket, deleted, origin, document, vector, edges)
                VALUES ($c, $id, $v, $h, $b, $d, $o, $doc, $vec, $edges)
                ON CONFLICT (collection, id) DO UPDATE SET
                    version = excluded.version, hash = excluded.hash, bucket = excluded.bucket, deleted = excluded.deleted,
                    origin = excluded.origin, document = excluded.document, vector = excluded.vector, edges = excluded.edges,
                    vv = CASE WHEN documents.vv IS NULL AND (documents.version & 255) = (excluded.version & 255) THEN NULL
                         ELSE json_set(COALESCE(documents.vv, '{}'), '$."' || (documents.version & 255) || '"', documents.version) END,
                    from_node = NULL
                WHERE excluded.version > documents.version
                """;
            _parameters = new DocumentParameters(_command);
        }

        /// <summary>Returns 1 when written, 0 when the version guard kept a newer stored state.</summary>
        public int Execute(EntityChange change)
        {
            _parameters.Bind(change);
            return _command.ExecuteNonQuery();
        }

        public void Dispose() => _command.Dispose();
    }

    private protected override void ComputeProjections(SqliteConnection connection, string collection, List<DigestRow> rows)
    {
        foreach (var row in rows)
        {
            var entity = new SyncEntity(EntityKey.Trusted(collection, row.Id), row.A ?? [], SqliteCodec.BlobToVector(row.B), SqliteCodec.BlobToEdges(row.C));
            row.Projection = ProjectionHash.Compute(entity, StoreKind.Document);
        }
    }

    /// <inheritdoc />
    public async ValueTask<VersionedEntity?> ReadAsync(EntityKey key, CancellationToken cancellationToken)
    {
        await using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, version, hash, document, vector, edges FROM documents WHERE collection = $c AND id = $id AND deleted = 0";
        command.Parameters.AddWithValue("$c", key.Collection);
        command.Parameters.AddWithValue("$id", key.Id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadEntity(reader, key.Collection) : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanAsync(string collection, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, version, hash, document, vector, edges FROM documents WHERE collection = $c AND id > $after AND deleted = 0 ORDER BY id LIMIT $limit";
        command.Parameters.AddWithValue("$c", collection);
        command.Parameters.AddWithValue("$after", afterId ?? string.Empty);
        command.Parameters.AddWithValue("$limit", limit);
        var page = new List<VersionedEntity>(Math.Min(limit, 1024));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            page.Add(ReadEntity(reader, collection));
        }

        return page;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken) =>
        ScanBucketsAsync(collection, range, afterId, limit, EntityParts.All, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<VersionedEntity>> ScanBucketsAsync(string collection, BucketRange range, string? afterId, int limit, EntityParts parts, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();

        // Parts the caller does not use are not read at all: a graph backfill skips the document and the vector.
        var document = (parts & EntityParts.Document) != 0 ? "document" : "NULL";
        var vector = (parts & EntityParts.Vector) != 0 ? "vector" : "NULL";
        var edges = (parts & EntityParts.Edges) != 0 ? "edges" : "NULL";
        command.CommandText = $"""
            SELECT id, version, hash, {document}, {vector}, {edges} FROM documents
            WHERE collection = $c AND bucket BETWEEN $first AND $last AND (bucket, id) > ($ab, $aid) AND deleted = 0
            ORDER BY bucket, id LIMIT $limit
            """;
        command.Parameters.AddWithValue("$c", collection);
        command.Parameters.AddWithValue("$first", (long)range.First);
        command.Parameters.AddWithValue("$last", (long)range.Last);
        command.Parameters.AddWithValue("$ab", afterId is null ? -1L : (long)KeyHash.Bucket(EntityKey.Trusted(collection, afterId)));
        command.Parameters.AddWithValue("$aid", afterId ?? string.Empty);
        command.Parameters.AddWithValue("$limit", limit);
        var page = new List<VersionedEntity>(Math.Min(limit, 1024));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            page.Add(ReadEntity(reader, collection));
        }

        return page;
    }

    private static VersionedEntity ReadEntity(SqliteDataReader reader, string collection)
    {
        var entity = new SyncEntity(
            EntityKey.Trusted(collection, reader.GetString(0)),
            reader.IsDBNull(3) ? [] : (byte[])reader[3],
            SqliteCodec.BlobToVector(reader.IsDBNull(4) ? null : (byte[])reader[4]),
            SqliteCodec.BlobToEdges(reader.IsDBNull(5) ? null : (byte[])reader[5]));
        return new VersionedEntity(entity, new HlcTimestamp(reader.GetInt64(1)), SqliteCodec.BlobToHash((byte[])reader[2]));
    }
}
