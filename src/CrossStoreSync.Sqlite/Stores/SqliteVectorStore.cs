using System.Collections.Concurrent;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Stores;

/// <summary>
/// A vector store in a SQLite file: float32 vectors with the <c>_sync</c> columns, per-collection dimension and
/// distance recorded in <c>vector_collections</c>, and exact (brute-force) cosine or dot-product search. Thread-safe.
/// </summary>
public sealed class SqliteVectorStore : SqliteStoreBase, IVectorStore
{
    private readonly ConcurrentDictionary<string, CollectionDefinition> _collections = new(StringComparer.Ordinal);

    /// <summary>Opens (creating if needed) a vector store in its own database file.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="name">The store's name. <value>Default <c>vectors</c>.</value></param>
    /// <param name="durable">Whether every commit is fsync'd. <value>Default true.</value></param>
    public SqliteVectorStore(string path, string name = "vectors", bool durable = true)
        : base(name, StoreKind.Vector, new SqliteDatabase(path, durable), ownsDatabase: true)
    {
    }

    private protected override string Table => "vectors";

    private protected override string LiveCondition => "deleted = 0 AND vector IS NOT NULL";

    private protected override string ProjectionColumns => ", vector";

    private protected override void CreateSchema(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<CollectionDefinition> collections)
    {
        SqliteDatabase.Execute(connection, """
            CREATE TABLE IF NOT EXISTS vector_collections (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL, distance TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS vectors (
                collection TEXT NOT NULL,
                id TEXT NOT NULL,
                version INTEGER NOT NULL,
                hash BLOB NOT NULL,
                bucket INTEGER NOT NULL,
                deleted INTEGER NOT NULL,
                vector BLOB,
                origin TEXT,
                UNIQUE (collection, id));
            CREATE INDEX IF NOT EXISTS vectors_bucket ON vectors (collection, bucket, id);
            CREATE INDEX IF NOT EXISTS vectors_tombstones ON vectors (collection, version) WHERE deleted = 1;
            """, transaction);

        foreach (var collection in collections)
        {
            if (collection.VectorDimension is not { } dimension)
            {
                continue;
            }

            using var read = connection.CreateCommand();
            read.Transaction = transaction;
            read.CommandText = "SELECT dimension, distance FROM vector_collections WHERE name = $n";
            read.Parameters.AddWithValue("$n", collection.Name);
            using (var reader = read.ExecuteReader())
            {
                if (reader.Read())
                {
                    var existingDimension = reader.GetInt32(0);
                    var existingDistance = reader.GetString(1);
                    if (existingDimension != dimension || existingDistance != collection.Distance.ToString())
                    {
                        throw new SyncStoreException(
                            $"Vector collection {SafeText.Quote(collection.Name)} exists in store {SafeText.Quote(Name)} with dimension {existingDimension} and distance {existingDistance}, but is configured with dimension {dimension} and distance {collection.Distance}. Use a new collection (re-embedding) instead of changing it in place.",
                            isTransient: false, Name, null, "initialize");
                    }

                    _collections[collection.Name] = collection;
                    continue;
                }
            }

            using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO vector_collections (name, dimension, distance) VALUES ($n, $d, $dist)";
            insert.Parameters.AddWithValue("$n", collection.Name);
            insert.Parameters.AddWithValue("$d", dimension);
            insert.Parameters.AddWithValue("$dist", collection.Distance.ToString());
            insert.ExecuteNonQuery();
            _collections[collection.Name] = collection;
        }
    }

    private protected override void ValidateChanges(IReadOnlyList<EntityChange> changes)
    {
        base.ValidateChanges(changes);
        foreach (var change in changes)
        {
            if (change.Entity is not { HasVector: true } entity)
            {
                continue;
            }

            if (!_collections.TryGetValue(change.Key.Collection, out var collection) || collection.VectorDimension is not { } dimension)
            {
                throw new SyncStoreException($"Collection {SafeText.Quote(change.Key.Collection)} has no vector dimension configured in store {SafeText.Quote(Name)}.", false, Name, change.Key, "apply");
            }

            if (entity.Vector.Length != dimension)
            {
                throw new SyncStoreException($"Vector of {SafeText.Quote(change.Key)} has dimension {entity.Vector.Length}; collection {SafeText.Quote(collection.Name)} in store {SafeText.Quote(Name)} expects {dimension}.", false, Name, change.Key, "apply");
            }
        }
    }

    private protected override void ApplyInTransaction(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO vectors (collection, id, version, hash, bucket, deleted, origin, vector)
            VALUES ($c, $id, $v, $h, $b, $d, $o, $vec)
            ON CONFLICT (collection, id) DO UPDATE SET
                version = excluded.version, hash = excluded.hash, bucket = excluded.bucket, deleted = excluded.deleted,
                origin = excluded.origin, vector = excluded.vector
            WHERE excluded.version > vectors.version
            """;
        var sync = new SyncParameters(command);
        var vec = command.Parameters.Add("$vec", SqliteType.Blob);
        foreach (var change in changes)
        {
            sync.Bind(change);
            vec.Value = (object?)SqliteCodec.VectorToBlob(change.Entity?.Vector ?? default) ?? DBNull.Value;
            command.ExecuteNonQuery();
        }
    }

    private protected override void ComputeProjections(SqliteConnection connection, string collection, List<DigestRow> rows)
    {
        foreach (var row in rows)
        {
            var entity = new SyncEntity(EntityKey.Trusted(collection, row.Id), default, SqliteCodec.BlobToVector(row.A));
            row.Projection = ProjectionHash.Compute(entity, StoreKind.Vector);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (!_collections.TryGetValue(collection, out var definition) || definition.VectorDimension != query.Length)
        {
            throw new ArgumentException($"Query has dimension {query.Length}; collection {SafeText.Quote(collection)} in store {SafeText.Quote(Name)} expects {(definition?.VectorDimension)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no vectors (not configured)"}.", nameof(query));
        }

        // Exact search keeps the k best in a min-heap: memory is O(k), whatever the collection's size.
        var best = new PriorityQueue<VectorMatch, float>(limit + 1);
        await using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, vector FROM vectors WHERE collection = $c AND deleted = 0 AND vector IS NOT NULL";
        command.Parameters.AddWithValue("$c", collection);
        using var reader = command.ExecuteReader();
        var buffer = new float[query.Length];
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var blob = (byte[])reader[1];
            if (blob.Length != buffer.Length * 4)
            {
                continue;
            }

            Buffer.BlockCopy(blob, 0, buffer, 0, blob.Length);
            var score = VectorMath.Score(query.Span, buffer, definition.Distance);
            best.Enqueue(new VectorMatch(EntityKey.Trusted(collection, reader.GetString(0)), score), score);
            if (best.Count > limit)
            {
                best.Dequeue();
            }
        }

        var result = new VectorMatch[best.Count];
        for (var i = result.Length - 1; i >= 0; i--)
        {
            result[i] = best.Dequeue();
        }

        return result;
    }
}
