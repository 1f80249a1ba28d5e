using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Stores;

/// <summary>
/// A graph store in a SQLite file: <c>nodes</c> (one per entity, with <c>_sync</c> columns) and typed <c>edges</c>.
/// An edge may point to a node that does not exist yet: it is kept and reads as a non-existing neighbour until the
/// node is written (edges join nodes by key, so no placeholder row is needed). Deleting a node leaves a versioned
/// tombstone and removes its outgoing edges; edges other entities declare towards it stay, since they belong to those
/// entities, and it reads as a non-existing neighbour. Thread-safe.
/// </summary>
public sealed class SqliteGraphStore : SqliteStoreBase, IGraphStore
{
    /// <summary>Opens (creating if needed) a graph store in its own database file.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="name">The store's name. <value>Default <c>graph</c>.</value></param>
    /// <param name="durable">Whether every commit is fsync'd. <value>Default true.</value></param>
    public SqliteGraphStore(string path, string name = "graph", bool durable = true)
        : base(name, StoreKind.Graph, new SqliteDatabase(path, durable), ownsDatabase: true)
    {
    }

    private protected override string Table => "nodes";

    private protected override string LiveCondition => "deleted = 0";

    private protected override string ProjectionColumns => string.Empty;

    private protected override void CreateSchema(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<CollectionDefinition> collections) =>
        SqliteDatabase.Execute(connection, """
            CREATE TABLE IF NOT EXISTS nodes (
                collection TEXT NOT NULL,
                id TEXT NOT NULL,
                version INTEGER NOT NULL,
                hash BLOB NOT NULL,
                bucket INTEGER NOT NULL,
                deleted INTEGER NOT NULL,
                origin TEXT,
                UNIQUE (collection, id));
            CREATE INDEX IF NOT EXISTS nodes_bucket ON nodes (collection, bucket, id);
            CREATE INDEX IF NOT EXISTS nodes_tombstones ON nodes (collection, version) WHERE deleted = 1;
            CREATE TABLE IF NOT EXISTS edges (
                src_collection TEXT NOT NULL,
                src_bucket INTEGER NOT NULL,
                src_id TEXT NOT NULL,
                type TEXT NOT NULL,
                dst_collection TEXT NOT NULL,
                dst_id TEXT NOT NULL,
                properties BLOB);
            CREATE INDEX IF NOT EXISTS edges_src ON edges (src_collection, src_bucket, src_id);
            CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst_collection, dst_id);
            """, transaction);

    private protected override void ApplyInTransaction(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes)
    {
        using var node = Command(connection, transaction, """
            INSERT INTO nodes (collection, id, version, hash, bucket, deleted, origin)
            VALUES ($c, $id, $v, $h, $b, $d, $o)
            ON CONFLICT (collection, id) DO UPDATE SET
                version = excluded.version, hash = excluded.hash, bucket = excluded.bucket, deleted = excluded.deleted,
                origin = excluded.origin
            WHERE excluded.version > nodes.version
            """);
        var sync = new SyncParameters(node);
        using var dropEdges = Command(connection, transaction, "DELETE FROM edges WHERE src_collection = $c AND src_bucket = $b AND src_id = $id", "$c", "$b", "$id");
        using var addEdges = Command(connection, transaction, """
            INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id, properties)
            SELECT k.value ->> 0, k.value ->> 1, k.value ->> 2, k.value ->> 3, k.value ->> 4, k.value ->> 5, unhex(k.value ->> 6)
            FROM json_each($edges) k
            """, "$edges");
        var withEdges = KeysWithEdges(connection, transaction, changes);

        // The new edges of the whole batch go in with one statement per few thousand (a JSON array read by json_each,
        // in order, so each node's edges keep their order): a statement per edge costs more to bind and step than the
        // insert itself.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
        using var json = new System.Text.Json.Utf8JsonWriter(buffer);
        var pending = 0;
        json.WriteStartArray();
        foreach (var change in changes)
        {
            var bucket = sync.Bind(change);
            if (node.ExecuteNonQuery() == 0)
            {
                continue; // the version guard kept a newer node: its edges stay too
            }

            // Only keys that have edges need them dropped: one query per batch instead of a probe per node, which
            // halves the work of a backfill, where no node has edges yet.
            if (withEdges.Contains(change.Key))
            {
                dropEdges.Parameters["$c"].Value = change.Key.Collection;
                dropEdges.Parameters["$b"].Value = bucket;
                dropEdges.Parameters["$id"].Value = change.Key.Id;
                dropEdges.ExecuteNonQuery();
            }

            if (change.Entity is null)
            {
                continue;
            }

            foreach (var edge in change.Entity.Edges)
            {
                json.WriteStartArray();
                json.WriteStringValue(change.Key.Collection);
                json.WriteNumberValue(bucket);
                json.WriteStringValue(change.Key.Id);
                json.WriteStringValue(edge.Type);
                json.WriteStringValue(edge.Target.Collection);
                json.WriteStringValue(edge.Target.Id);
                if (edge.Properties.IsEmpty)
                {
                    json.WriteNullValue();
                }
                else
                {
                    json.WriteStringValue(Convert.ToHexString(edge.Properties.Span));
                }

                json.WriteEndArray();
                if (++pending == 4096)
                {
                    FlushEdges(addEdges, json, buffer);
                    pending = 0;
                }
            }
        }

        if (pending > 0)
        {
            FlushEdges(addEdges, json, buffer);
        }
    }

    private static void FlushEdges(SqliteCommand addEdges, System.Text.Json.Utf8JsonWriter json, System.Buffers.ArrayBufferWriter<byte> buffer)
    {
        json.WriteEndArray();
        json.Flush();
        addEdges.Parameters["$edges"].Value = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        addEdges.ExecuteNonQuery();
        buffer.ResetWrittenCount();
        json.Reset(buffer);
        json.WriteStartArray();
    }

    /// <summary>
    /// The keys of a batch that have outgoing edge rows, read with one query per 500 keys. Asking the edges themselves
    /// (not whether the node exists) keeps this exact even after out-of-band edits left edges without their node.
    /// </summary>
    private static HashSet<EntityKey> KeysWithEdges(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EntityChange> changes)
    {
        var found = new HashSet<EntityKey>();

        // The keys travel as one JSON parameter ([[bucket, id], ...]), so the statement text never changes and stays
        // prepared; a VALUES list of 1000 named parameters costs more to bind than the lookup itself. CROSS JOIN fixes
        // the join order: one index search per key (as "(src_bucket, src_id) IN (...)", SQLite scans every edge of the
        // collection, which grows with the store).
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT DISTINCT e.src_id
            FROM json_each($keys) k CROSS JOIN edges e
            ON e.src_collection = $c AND e.src_bucket = k.value ->> 0 AND e.src_id = k.value ->> 1
            """;
        var collection = command.Parameters.Add("$c", SqliteType.Text);
        var keys = command.Parameters.Add("$keys", SqliteType.Text);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(16 * 1024);
        foreach (var group in changes.GroupBy(c => c.Key.Collection, StringComparer.Ordinal))
        {
            foreach (var chunk in group.Chunk(500))
            {
                buffer.ResetWrittenCount();
                using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
                {
                    json.WriteStartArray();
                    foreach (var change in chunk)
                    {
                        json.WriteStartArray();
                        json.WriteNumberValue(Hashing.KeyHash.Bucket(change.Key));
                        json.WriteStringValue(change.Key.Id);
                        json.WriteEndArray();
                    }

                    json.WriteEndArray();
                }

                collection.Value = group.Key;
                keys.Value = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    found.Add(EntityKey.Trusted(group.Key, reader.GetString(0)));
                }
            }
        }

        return found;
    }

    private protected override long RemoveByOrigin(SqliteConnection connection, SqliteTransaction transaction, string collection, string origin)
    {
        // A node's outgoing edges belong to it and go with it; edges other nodes declare towards it stay.
        using var edges = Command(connection, transaction, """
            DELETE FROM edges WHERE src_collection = $c AND (src_bucket, src_id) IN (SELECT bucket, id FROM nodes WHERE collection = $c AND origin = $o)
            """, "$c", "$o");
        edges.Parameters["$c"].Value = collection;
        edges.Parameters["$o"].Value = origin;
        edges.ExecuteNonQuery();
        return base.RemoveByOrigin(connection, transaction, collection, origin);
    }

    private protected override void ComputeProjections(SqliteConnection connection, string collection, List<DigestRow> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        // A scan page is ordered by (bucket, id), as the edge index is: one range query reads its edges. Rows found by
        // id lookup are not ordered, so each reads its own edges.
        Dictionary<string, List<SyncEdge>>? edgesById = null;
        if (IsOrderedByBucket(rows))
        {
            edgesById = new Dictionary<string, List<SyncEdge>>(StringComparer.Ordinal);
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT type, dst_collection, dst_id, properties, src_id FROM edges
                WHERE src_collection = $c AND (src_bucket, src_id) >= ($fb, $fid) AND (src_bucket, src_id) <= ($lb, $lid)
                """;
            command.Parameters.AddWithValue("$c", collection);
            command.Parameters.AddWithValue("$fb", (long)rows[0].Bucket);
            command.Parameters.AddWithValue("$fid", rows[0].Id);
            command.Parameters.AddWithValue("$lb", (long)rows[^1].Bucket);
            command.Parameters.AddWithValue("$lid", rows[^1].Id);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var id = reader.GetString(4);
                if (!edgesById.TryGetValue(id, out var list))
                {
                    edgesById[id] = list = [];
                }

                list.Add(ReadEdge(reader));
            }
        }

        foreach (var row in rows)
        {
            var edges = edgesById is null ? ReadEdges(connection, collection, row.Id) : edgesById.GetValueOrDefault(row.Id);
            var entity = new SyncEntity(EntityKey.Trusted(collection, row.Id), default, default, edges ?? []);
            row.Projection = ProjectionHash.Compute(entity, StoreKind.Graph);
        }
    }

    /// <summary>Reads an edge from columns <c>type, dst_collection, dst_id, properties</c> at ordinals 0..3.</summary>
    private static SyncEdge ReadEdge(SqliteDataReader reader) =>
        new(reader.GetString(0), EntityKey.Trusted(reader.GetString(1), reader.GetString(2)), reader.IsDBNull(3) ? default : (byte[])reader[3]);

    private static bool IsOrderedByBucket(List<DigestRow> rows)
    {
        for (var i = 1; i < rows.Count; i++)
        {
            var c = rows[i - 1].Bucket.CompareTo(rows[i].Bucket);
            if (c > 0 || (c == 0 && string.CompareOrdinal(rows[i - 1].Id, rows[i].Id) > 0))
            {
                return false;
            }
        }

        return true;
    }

    private static List<SyncEdge> ReadEdges(SqliteConnection connection, string collection, string id)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT type, dst_collection, dst_id, properties FROM edges WHERE src_collection = $c AND src_bucket = $b AND src_id = $id";
        command.Parameters.AddWithValue("$c", collection);
        command.Parameters.AddWithValue("$b", (long)KeyHash.Bucket(EntityKey.Trusted(collection, id)));
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        var list = new List<SyncEdge>();
        while (reader.Read())
        {
            list.Add(ReadEdge(reader));
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<GraphNeighbor>> GetNeighborsAsync(EntityKey node, string? edgeType, EdgeDirection direction, CancellationToken cancellationToken)
    {
        var result = new List<GraphNeighbor>();
        await using var connection = Database.OpenRead();
        if (direction != EdgeDirection.Incoming)
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT e.type, e.dst_collection, e.dst_id, COALESCE(n.deleted = 0, 0)
                FROM edges e LEFT JOIN nodes n ON n.collection = e.dst_collection AND n.id = e.dst_id
                WHERE e.src_collection = $c AND e.src_bucket = $b AND e.src_id = $id AND ($t IS NULL OR e.type = $t)
                ORDER BY e.rowid
                """;
            AddNodeParameters(command, node, edgeType);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                result.Add(new GraphNeighbor(EntityKey.Trusted(reader.GetString(1), reader.GetString(2)), reader.GetString(0), EdgeDirection.Outgoing, reader.GetInt64(3) != 0));
            }
        }

        if (direction != EdgeDirection.Outgoing)
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT e.type, e.src_collection, e.src_id FROM edges e
                WHERE e.dst_collection = $c AND e.dst_id = $id AND ($t IS NULL OR e.type = $t)
                ORDER BY e.rowid
                """;
            AddNodeParameters(command, node, edgeType);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                result.Add(new GraphNeighbor(EntityKey.Trusted(reader.GetString(1), reader.GetString(2)), reader.GetString(0), EdgeDirection.Incoming, true));
            }
        }

        return result;
    }

    private static void AddNodeParameters(SqliteCommand command, EntityKey node, string? edgeType)
    {
        command.Parameters.AddWithValue("$c", node.Collection);
        command.Parameters.AddWithValue("$b", (long)KeyHash.Bucket(node));
        command.Parameters.AddWithValue("$id", node.Id);
        command.Parameters.AddWithValue("$t", (object?)edgeType ?? DBNull.Value);
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction transaction, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        return command;
    }
}
