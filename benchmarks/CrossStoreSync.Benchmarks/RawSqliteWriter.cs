using System.Runtime.InteropServices;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// The baseline: the same rows written to the same tables (documents, vectors, nodes + edges) with plain batched
/// SQLite transactions, one connection per file, the same PRAGMAs, no change log and no engine.
/// </summary>
internal sealed class RawSqliteWriter : IDisposable
{
    private readonly SqliteConnection _documents;
    private readonly SqliteConnection _vectors;
    private readonly SqliteConnection _graph;
    private long _version = 1;

    private RawSqliteWriter(SqliteConnection documents, SqliteConnection vectors, SqliteConnection graph)
    {
        _documents = documents;
        _vectors = vectors;
        _graph = graph;
    }

    public static async Task<RawSqliteWriter> CreateAsync(string directory)
    {
        // Create the schemas with the stores themselves, so the baseline writes into identical tables and indexes.
        CollectionDefinition[] collections = [new(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine), new("topics", null, VectorDistance.Cosine)];
        await using (var log = new SqliteChangeLog(Path.Combine(directory, "source.db")))
        {
            await log.InitializeAsync(CancellationToken.None);
        }

        await using (var v = new SqliteVectorStore(Path.Combine(directory, "vectors.db")))
        {
            await v.InitializeAsync(collections, CancellationToken.None);
        }

        await using (var g = new SqliteGraphStore(Path.Combine(directory, "graph.db")))
        {
            await g.InitializeAsync(collections, CancellationToken.None);
        }

        SqliteConnection.ClearAllPools();
        return new RawSqliteWriter(Open(Path.Combine(directory, "source.db")), Open(Path.Combine(directory, "vectors.db")), Open(Path.Combine(directory, "graph.db")));
    }

    public void Write(IReadOnlyList<SyncEntity> batch)
    {
        var version = _version++ << 20;
        WriteDocuments(batch, version);
        WriteReplicas(batch, version);
    }

    /// <summary>The replica half of <see cref="Write"/>: the vector and graph tables only (an outbox relay's work).</summary>
    public void WriteReplicas(IReadOnlyList<SyncEntity> batch) => WriteReplicas(batch, _version++ << 20);

    private void WriteDocuments(IReadOnlyList<SyncEntity> batch, long version)
    {
        using (var tx = _documents.BeginTransaction())
        using (var command = Command(_documents, tx, """
            INSERT INTO documents (collection, id, version, hash, bucket, deleted, document, vector, edges) VALUES ($c, $id, $v, $h, $b, 0, $doc, $vec, NULL)
            ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, hash = excluded.hash, document = excluded.document, vector = excluded.vector
            WHERE excluded.version > documents.version
            """, "$c", "$id", "$v", "$h", "$b", "$doc", "$vec"))
        {
            foreach (var e in batch)
            {
                Bind(command, e, version);
                command.Parameters["$doc"].Value = e.Document.ToArray();
                command.Parameters["$vec"].Value = VectorBlob(e);
                command.ExecuteNonQuery();
            }

            tx.Commit();
        }
    }

    private void WriteReplicas(IReadOnlyList<SyncEntity> batch, long version)
    {
        using (var tx = _vectors.BeginTransaction())
        using (var command = Command(_vectors, tx, """
            INSERT INTO vectors (collection, id, version, hash, bucket, deleted, vector) VALUES ($c, $id, $v, $h, $b, 0, $vec)
            ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, hash = excluded.hash, vector = excluded.vector
            WHERE excluded.version > vectors.version
            """, "$c", "$id", "$v", "$h", "$b", "$vec"))
        {
            foreach (var e in batch)
            {
                Bind(command, e, version);
                command.Parameters["$vec"].Value = VectorBlob(e);
                command.ExecuteNonQuery();
            }

            tx.Commit();
        }

        using (var tx = _graph.BeginTransaction())
        using (var node = Command(_graph, tx, """
            INSERT INTO nodes (collection, id, version, hash, bucket, deleted) VALUES ($c, $id, $v, $h, $b, 0)
            ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, hash = excluded.hash
            WHERE excluded.version > nodes.version
            """, "$c", "$id", "$v", "$h", "$b"))
        using (var drop = Command(_graph, tx, "DELETE FROM edges WHERE src_collection = $c AND src_bucket = $b AND src_id = $id", "$c", "$b", "$id"))
        using (var edge = Command(_graph, tx, "INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id, properties) VALUES ($c, $b, $id, $t, $dc, $did, NULL)", "$c", "$b", "$id", "$t", "$dc", "$did"))
        {
            foreach (var e in batch)
            {
                Bind(node, e, version);
                node.ExecuteNonQuery();
                var bucket = (long)KeyHash.Bucket(e.Key);
                drop.Parameters["$c"].Value = e.Key.Collection;
                drop.Parameters["$b"].Value = bucket;
                drop.Parameters["$id"].Value = e.Key.Id;
                drop.ExecuteNonQuery();
                foreach (var ed in e.Edges)
                {
                    edge.Parameters["$c"].Value = e.Key.Collection;
                    edge.Parameters["$b"].Value = bucket;
                    edge.Parameters["$id"].Value = e.Key.Id;
                    edge.Parameters["$t"].Value = ed.Type;
                    edge.Parameters["$dc"].Value = ed.Target.Collection;
                    edge.Parameters["$did"].Value = ed.Target.Id;
                    edge.ExecuteNonQuery();
                }
            }

            tx.Commit();
        }
    }

    public void Dispose()
    {
        _documents.Dispose();
        _vectors.Dispose();
        _graph.Dispose();
        SqliteConnection.ClearAllPools();
    }

    private static void Bind(SqliteCommand command, SyncEntity e, long version)
    {
        command.Parameters["$c"].Value = e.Key.Collection;
        command.Parameters["$id"].Value = e.Key.Id;
        command.Parameters["$v"].Value = version;
        var hash = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(hash, EntityEncoding.ComputeContentHash(e));
        command.Parameters["$h"].Value = hash;
        command.Parameters["$b"].Value = (long)KeyHash.Bucket(e.Key);
    }

    private static byte[] VectorBlob(SyncEntity e) => MemoryMarshal.AsBytes(e.Vector.Span).ToArray();

    private static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection($"Data Source={path}");
        connection.Open();
        foreach (var pragma in new[] { "PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", "PRAGMA busy_timeout=30000;" })
        {
            using var command = connection.CreateCommand();
            command.CommandText = pragma;
            command.ExecuteNonQuery();
        }

        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction tx, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var p in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = p });
        }

        return command;
    }
}
