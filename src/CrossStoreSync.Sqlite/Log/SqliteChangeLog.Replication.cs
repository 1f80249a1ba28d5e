using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Sqlite.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Log;

/// <summary>Replication between nodes (DESIGN.md §7): causal histories in <c>documents.vv</c>, conflicts, the log id.</summary>
public sealed partial class SqliteChangeLog
{
    private const string StateColumns = "d.version, d.hash, d.deleted, d.document, d.vector, d.edges, d.vv, d.from_node";

    // What a decision reads first: the content (documents, vectors, edges: kilobytes per row) is read only for a
    // conflict, the one case that looks at it.
    private const string HeadColumns = "d.version, d.hash, d.deleted, d.vv, d.from_node";
    private string? _logId;

    private static void CreateReplicationTables(SqliteConnection connection, SqliteTransaction transaction)
    {
        SqliteDatabase.Execute(connection, """
            CREATE TABLE IF NOT EXISTS log_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS conflicts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                collection TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                detected_at INTEGER NOT NULL,
                peer INTEGER NOT NULL,
                winner INTEGER NOT NULL,
                resolution INTEGER NOT NULL,
                loser_kind INTEGER NOT NULL,
                loser_version INTEGER NOT NULL,
                loser_hash BLOB NOT NULL,
                loser_payload BLOB);
            CREATE INDEX IF NOT EXISTS conflicts_key ON conflicts (collection, entity_id, id);
            """, transaction);

        // The log's identity is created with it, so a puller that sees another id knows the log was reset or replaced.
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO log_meta (name, value) VALUES ('log_id', $id) ON CONFLICT (name) DO NOTHING";
        command.Parameters.AddWithValue("$id", Guid.NewGuid().ToString("N"));
        command.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public async ValueTask<string> GetLogIdAsync(CancellationToken cancellationToken)
    {
        if (_logId is { } known)
        {
            return known;
        }

        EnsureInitialized();
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM log_meta WHERE name = 'log_id'";
        return _logId = (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, LogCheckpoint? checkpoint, Func<EntityChange, EntityChange> restamp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(restamp);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Length);
        return AppendAndApplyCoreAsync(changes, checkpoint, (c, t) => Documents.ApplyLocalWithin(c, t, changes, restamp), null, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<ReplicationReadResult> ReadReplicationAsync(long afterLsn, int maxEntries, int skipReceivedFrom, Func<string, bool> includeCollection, List<ReplicatedState> destination, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        ArgumentNullException.ThrowIfNull(includeCollection);
        ArgumentNullException.ThrowIfNull(destination);
        EnsureInitialized();
        var head = Volatile.Read(ref _nextLsn) - 1;
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();

        // Each entry is read with the current state of its key: the state the source holds now is never older than
        // the entry, so a puller gets it once however often the key changed in the range.
        command.CommandText = $"""
            SELECT l.lsn, l.state, l.checksum, l.collection, l.id, {StateColumns}
            FROM log_entries l LEFT JOIN documents d ON d.collection = l.collection AND d.id = l.id
            WHERE l.lsn > $after ORDER BY l.lsn LIMIT $limit
            """;
        command.Parameters.AddWithValue("$after", afterLsn);
        command.Parameters.AddWithValue("$limit", maxEntries);
        var through = afterLsn;
        var fingerprint = 0L;
        var latest = new Dictionary<(string, string), ReplicatedState>();
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.Read())
            {
                if ((LogEntryState)reader.GetInt32(1) == LogEntryState.Pending)
                {
                    break;
                }

                through = reader.GetInt64(0);
                fingerprint = reader.GetInt64(2);
                var collection = reader.GetString(3);
                if ((LogEntryState)reader.GetInt32(1) != LogEntryState.Committed || reader.IsDBNull(5) || !includeCollection(collection))
                {
                    continue;
                }

                var id = reader.GetString(4);
                latest.Remove((collection, id));
                if (!reader.IsDBNull(12) && reader.GetInt32(12) == skipReceivedFrom)
                {
                    continue;
                }

                var state = ReadState(reader, 5, EntityKey.Trusted(collection, id));
                latest[(collection, id)] = new ReplicatedState(through, state.Change, state.History);
            }
        }

        var start = destination.Count;
        destination.AddRange(latest.Values);
        destination.Sort(start, destination.Count - start, Comparer<ReplicatedState>.Create(static (a, b) => a.Lsn.CompareTo(b.Lsn)));
        return new ReplicationReadResult(through, fingerprint, Math.Max(head, through));
    }

    /// <inheritdoc />
    public async ValueTask<long?> GetFingerprintAsync(long lsn, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT checksum FROM log_entries WHERE lsn = $l";
        command.Parameters.AddWithValue("$l", lsn);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long checksum ? checksum : null;
    }

    /// <inheritdoc />
    public async ValueTask<ReplicationApplyResult> ApplyReplicatedAsync(IReadOnlyList<ReplicatedState> states, int fromNode, ReplicationDecider decide, LogCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(decide);
        EnsureInitialized();
        var written = new List<EntityChange>();
        var result = await _database.WriteAsync((c, t) =>
        {
            written.Clear();
            var decisions = new ReplicationDecision[states.Count];
            var conflicts = new List<ConflictRecord>();
            using var read = c.CreateCommand();
            read.Transaction = t;
            read.CommandText = $"SELECT {HeadColumns} FROM documents d WHERE d.collection = $c AND d.id = $id";
            var readCollection = read.Parameters.Add("$c", SqliteType.Text);
            var readId = read.Parameters.Add("$id", SqliteType.Text);
            using var readFull = c.CreateCommand();
            readFull.Transaction = t;
            readFull.CommandText = $"SELECT {StateColumns} FROM documents d WHERE d.collection = $c AND d.id = $id";
            var fullCollection = readFull.Parameters.Add("$c", SqliteType.Text);
            var fullId = readFull.Parameters.Add("$id", SqliteType.Text);
            using var write = new ReplicatedWrite(c, t);
            using var merge = c.CreateCommand();
            merge.Transaction = t;
            merge.CommandText = "UPDATE documents SET vv = $vv WHERE collection = $c AND id = $id AND version = $v";
            var mergeVv = merge.Parameters.Add("$vv", SqliteType.Text);
            var mergeCollection = merge.Parameters.Add("$c", SqliteType.Text);
            var mergeId = merge.Parameters.Add("$id", SqliteType.Text);
            var mergeVersion = merge.Parameters.Add("$v", SqliteType.Integer);
            using var record = new ConflictInsert(c, t);

            for (var i = 0; i < states.Count; i++)
            {
                var key = states[i].Change.Key;
                readCollection.Value = key.Collection;
                readId.Value = key.Id;
                StoredState? local = null;
                using (var reader = read.ExecuteReader())
                {
                    if (reader.Read())
                    {
                        local = ReadHead(reader, key);
                    }
                }

                if (local is not null && ReplicationDecisions.NeedsStoredContent(states[i], local))
                {
                    fullCollection.Value = key.Collection;
                    fullId.Value = key.Id;
                    using var reader = readFull.ExecuteReader();
                    reader.Read();
                    local = ReadState(reader, 0, key);
                }

                var decision = decide(states[i], local);
                switch (decision.Action)
                {
                    case ReplicationAction.Write:
                        write.Execute(decision.Write!, decision.History, decision.ReceivedFrom);
                        written.Add(decision.Write!);
                        break;
                    case ReplicationAction.MergeHistory:
                        mergeVv.Value = decision.History.ToJson();
                        mergeCollection.Value = key.Collection;
                        mergeId.Value = key.Id;
                        mergeVersion.Value = local!.Change.Version.Value;
                        mergeVv.Value ??= DBNull.Value;
                        merge.ExecuteNonQuery();
                        break;
                }

                foreach (var conflict in decision.Conflicts ?? [])
                {
                    conflicts.Add(record.Execute(conflict));
                }

                decisions[i] = decision;
            }

            LsnRange? appended = written.Count == 0 ? null : Insert(c, t, Prepare(written, withPayload: false), LogEntryState.Committed);
            if (checkpoint is { } saved)
            {
                WriteCheckpoint(c, t, saved.Name, saved.Value);
            }

            return new ReplicationApplyResult(appended, decisions, conflicts);
        }, cancellationToken).ConfigureAwait(false);

        if (result.Appended is { } range)
        {
            Remember(range, written, LogEntryState.Committed);
        }

        return result;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoredState>> ReadStatesAsync(IReadOnlyList<EntityKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {StateColumns} FROM documents d WHERE d.collection = $c AND d.id = $id";
        var collection = command.Parameters.Add("$c", SqliteType.Text);
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var result = new List<StoredState>(keys.Count);
        foreach (var key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            collection.Value = key.Collection;
            id.Value = key.Id;
            using var reader = command.ExecuteReader();
            if (reader.Read())
            {
                result.Add(ReadState(reader, 0, key));
            }
        }

        return result;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StateDigest>> ScanStateDigestsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, version, hash, deleted FROM documents
            WHERE collection = $c AND bucket BETWEEN $first AND $last AND (bucket, id) > ($ab, $aid)
            ORDER BY bucket, id LIMIT $limit
            """;
        command.Parameters.AddWithValue("$c", collection);
        command.Parameters.AddWithValue("$first", (long)range.First);
        command.Parameters.AddWithValue("$last", (long)range.Last);
        command.Parameters.AddWithValue("$ab", afterId is null ? -1L : (long)KeyHash.Bucket(EntityKey.Trusted(collection, afterId)));
        command.Parameters.AddWithValue("$aid", afterId ?? string.Empty);
        command.Parameters.AddWithValue("$limit", limit);
        var page = new List<StateDigest>(Math.Min(limit, 4096));
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (reader.Read())
        {
            page.Add(new StateDigest(reader.GetString(0), new HlcTimestamp(reader.GetInt64(1)), SqliteCodec.BlobToHash((byte[])reader[2]), reader.GetInt64(3) != 0));
        }

        return page;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ConflictRecord>> ListConflictsAsync(string? collection, string? id, long afterId, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, collection, entity_id, detected_at, peer, winner, resolution, loser_kind, loser_version, loser_hash, loser_payload
            FROM conflicts WHERE id > $after AND ($c IS NULL OR collection = $c) AND ($id IS NULL OR entity_id = $id)
            ORDER BY id LIMIT $n
            """;
        command.Parameters.AddWithValue("$after", afterId);
        command.Parameters.AddWithValue("$c", (object?)collection ?? DBNull.Value);
        command.Parameters.AddWithValue("$id", (object?)id ?? DBNull.Value);
        command.Parameters.AddWithValue("$n", maxCount);
        var result = new List<ConflictRecord>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (reader.Read())
        {
            var key = EntityKey.Trusted(reader.GetString(1), reader.GetString(2));
            var loserVersion = new HlcTimestamp(reader.GetInt64(8));
            var loser = (ChangeKind)reader.GetInt32(7) == ChangeKind.Delete
                ? EntityChange.Delete(key, loserVersion)
                : EntityChange.Upsert(EntityEncoding.Decode((byte[])reader[10]), loserVersion, SqliteCodec.BlobToHash((byte[])reader[9]));
            result.Add(new ConflictRecord(
                reader.GetInt64(0),
                key,
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                reader.GetInt32(4),
                new HlcTimestamp(reader.GetInt64(5)),
                loser,
                (ConflictResolutionKind)reader.GetInt32(6)));
        }

        return result;
    }

    /// <summary>
    /// Reads <see cref="HeadColumns"/>: the stored version, history and origin, with a content-less stand-in for an
    /// upsert's content (its hash is the stored one). Only a conflict looks at the content;
    /// <see cref="ReplicationDecisions.NeedsStoredContent"/> says when the whole state must be read instead.
    /// </summary>
    private static StoredState ReadHead(SqliteDataReader reader, EntityKey key)
    {
        var version = new HlcTimestamp(reader.GetInt64(0));
        var change = reader.GetInt64(2) != 0
            ? EntityChange.Delete(key, version)
            : EntityChange.Upsert(new SyncEntity(key, ReadOnlyMemory<byte>.Empty), version, SqliteCodec.BlobToHash((byte[])reader[1]));
        var history = VersionVector.ParseJson(reader.IsDBNull(3) ? null : reader.GetString(3)).With(version);
        return new StoredState(change, history, reader.IsDBNull(4) ? null : reader.GetInt32(4));
    }

    /// <summary>Reads <see cref="StateColumns"/> starting at <paramref name="first"/>.</summary>
    private static StoredState ReadState(SqliteDataReader reader, int first, EntityKey key)
    {
        var version = new HlcTimestamp(reader.GetInt64(first));
        EntityChange change;
        if (reader.GetInt64(first + 2) != 0)
        {
            change = EntityChange.Delete(key, version);
        }
        else
        {
            var entity = new SyncEntity(
                key,
                reader.IsDBNull(first + 3) ? [] : (byte[])reader[first + 3],
                SqliteCodec.BlobToVector(reader.IsDBNull(first + 4) ? null : (byte[])reader[first + 4]),
                SqliteCodec.BlobToEdges(reader.IsDBNull(first + 5) ? null : (byte[])reader[first + 5]));
            change = EntityChange.Upsert(entity, version, SqliteCodec.BlobToHash((byte[])reader[first + 1]));
        }

        var history = VersionVector.ParseJson(reader.IsDBNull(first + 6) ? null : reader.GetString(first + 6)).With(version);
        return new StoredState(change, history, reader.IsDBNull(first + 7) ? null : reader.GetInt32(first + 7));
    }

    /// <summary>Writes a decided state with its history and the node it came from (the decision already passed the version guard).</summary>
    private sealed class ReplicatedWrite : IDisposable
    {
        private readonly SqliteCommand _command;
        private readonly SqliteDocumentStore.DocumentParameters _parameters;
        private readonly SqliteParameter _history;
        private readonly SqliteParameter _from;

        public ReplicatedWrite(SqliteConnection connection, SqliteTransaction transaction)
        {
            _command = connection.CreateCommand();
            _command.Transaction = transaction;
            _command.CommandText = """
                INSERT INTO documents (collection, id, version, hash, bucket, deleted, origin, document, vector, edges, vv, from_node)
                VALUES ($c, $id, $v, $h, $b, $d, $o, $doc, $vec, $edges, $vv, $from)
                ON CONFLICT (collection, id) DO UPDATE SET
                    version = excluded.version, hash = excluded.hash, bucket = excluded.bucket, deleted = excluded.deleted,
                    origin = excluded.origin, document = excluded.document, vector = excluded.vector, edges = excluded.edges,
                    vv = excluded.vv, from_node = excluded.from_node
                WHERE excluded.version > documents.version
                """;
            _parameters = new SqliteDocumentStore.DocumentParameters(_command);
            _history = _command.Parameters.Add("$vv", SqliteType.Text);
            _from = _command.Parameters.Add("$from", SqliteType.Integer);
        }

        public void Execute(EntityChange change, VersionVector history, int? from)
        {
            _parameters.Bind(change);
            _history.Value = (object?)history.ToJson() ?? DBNull.Value;
            _from.Value = from is { } node ? node : DBNull.Value;
            if (_command.ExecuteNonQuery() == 0)
            {
                // The decision read the stored state in this same transaction, so a refusal means a decision that
                // is not newer than what it read: roll the batch back rather than log a state the source lacks.
                throw new InvalidOperationException($"The source refused the replicated state of {SafeText.Quote(change.Key)} at version {change.Version}.");
            }
        }

        public void Dispose() => _command.Dispose();
    }

    /// <summary>Inserts conflict records, keeping the losing state whole.</summary>
    private sealed class ConflictInsert : IDisposable
    {
        private readonly SqliteCommand _command;

        public ConflictInsert(SqliteConnection connection, SqliteTransaction transaction)
        {
            _command = connection.CreateCommand();
            _command.Transaction = transaction;
            _command.CommandText = """
                INSERT INTO conflicts (collection, entity_id, detected_at, peer, winner, resolution, loser_kind, loser_version, loser_hash, loser_payload)
                VALUES ($c, $id, $at, $peer, $winner, $resolution, $kind, $version, $hash, $payload) RETURNING id
                """;
        }

        public ConflictRecord Execute(ConflictRecord conflict)
        {
            _command.Parameters.Clear();
            _command.Parameters.AddWithValue("$c", conflict.Key.Collection);
            _command.Parameters.AddWithValue("$id", conflict.Key.Id);
            _command.Parameters.AddWithValue("$at", conflict.DetectedAt.ToUnixTimeMilliseconds());
            _command.Parameters.AddWithValue("$peer", conflict.PeerNodeId);
            _command.Parameters.AddWithValue("$winner", conflict.Winner.Value);
            _command.Parameters.AddWithValue("$resolution", (int)conflict.Resolution);
            _command.Parameters.AddWithValue("$kind", (int)conflict.Loser.Kind);
            _command.Parameters.AddWithValue("$version", conflict.Loser.Version.Value);
            _command.Parameters.AddWithValue("$hash", SqliteCodec.HashToBlob(conflict.Loser.ContentHash));
            _command.Parameters.AddWithValue("$payload", conflict.Loser.Entity is { } entity ? EntityEncoding.EncodeToArray(entity) : DBNull.Value);
            var id = Convert.ToInt64(_command.ExecuteScalar(), CultureInfo.InvariantCulture);
            return conflict with { Id = id };
        }

        public void Dispose() => _command.Dispose();
    }
}
