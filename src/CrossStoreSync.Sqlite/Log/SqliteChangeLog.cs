using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Log;

/// <summary>
/// The durable change log in a SQLite file, with cursors, dead letters and a document store in the same file, so an
/// application write appends to the log and writes the source of truth in one transaction. Concurrent appends are
/// group-committed: they share one fsync'd transaction. Each record carries an XXH64 checksum over its LSN, kind,
/// version, content hash, key and payload; a mismatch is reported as <see cref="ChangeLogCorruptedException"/>.
/// Thread-safe.
/// </summary>
public sealed partial class SqliteChangeLog : IReplicationLog, IChangeLogRetention, IAsyncDisposable
{
    private const int TailCacheCapacity = 8192;

    // Records appended together with the source write carry no payload: the documents row written in the same
    // transaction is the payload, so the entity is stored once. Reading such a record joins the row and yields the
    // state the source holds now, which is never older than the record (the version guard keeps the newest).
    private const string SelectRecords =
        "SELECT l.lsn, l.collection, l.id, l.kind, l.version, l.state, l.hash, l.payload, l.checksum, " +
        "d.version, d.hash, d.deleted, d.document, d.vector, d.edges " +
        "FROM log_entries l LEFT JOIN documents d ON d.collection = l.collection AND d.id = l.id ";
    private const string LastLsnSql =
        "SELECT max(COALESCE((SELECT MAX(lsn) FROM log_entries), 0), COALESCE((SELECT through FROM log_truncation WHERE id = 1), 0))";

    private readonly SqliteDatabase _database;
    private readonly LogTailCache _tail = new(TailCacheCapacity);
    private long _nextLsn; // touched only on the writer thread once initialised
    private int _initialized;

    /// <summary>Opens (creating if needed) the log and its document store in <paramref name="path"/>.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="documentStoreName">The name of the document store that shares the file. <value>Default <c>documents</c>.</value></param>
    /// <param name="durable">Whether every commit is fsync'd before writers are acknowledged. <value>Default true.</value></param>
    public SqliteChangeLog(string path, string documentStoreName = "documents", bool durable = true)
    {
        _database = new SqliteDatabase(path, durable);
        Documents = new SqliteDocumentStore(_database, documentStoreName, coupledToLog: true);
    }

    /// <summary>The document store that commits together with the log.</summary>
    public SqliteDocumentStore Documents { get; }

    /// <inheritdoc />
    public IDocumentStore? CoupledSource => Documents;

    /// <summary>The database file.</summary>
    public string DatabasePath => _database.Path;

    internal SqliteDatabase Database => _database;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken)
    {
        await _database.WriteAsync((c, t) =>
        {
            SqliteDatabase.Execute(c, """
                CREATE TABLE IF NOT EXISTS log_entries (
                    lsn INTEGER PRIMARY KEY,
                    collection TEXT NOT NULL,
                    id TEXT NOT NULL,
                    kind INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    state INTEGER NOT NULL,
                    hash BLOB NOT NULL,
                    payload BLOB,
                    checksum INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS log_entries_key ON log_entries (collection, id, lsn);
                CREATE INDEX IF NOT EXISTS log_entries_pending ON log_entries (lsn) WHERE state = 0;
                CREATE TABLE IF NOT EXISTS cursors (store TEXT PRIMARY KEY, lsn INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS dead_letters (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    store TEXT NOT NULL,
                    lsn INTEGER NOT NULL,
                    collection TEXT NOT NULL,
                    entity_id TEXT NOT NULL,
                    kind INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS dead_letters_key ON dead_letters (store, collection, entity_id);
                CREATE INDEX IF NOT EXISTS dead_letters_lsn ON dead_letters (lsn);
                CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at);
                CREATE TABLE IF NOT EXISTS log_truncation (id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL);
                """, t);
            SqliteDocumentStore.CreateTables(c, t);
            CreateReplicationTables(c, t);
            CreateCompensationTables(c, t);
            using var max = c.CreateCommand();
            max.Transaction = t;
            // After a truncation that removed every entry, numbering continues after what was removed.
            max.CommandText = LastLsnSql;
            _nextLsn = Convert.ToInt64(max.ExecuteScalar(), CultureInfo.InvariantCulture) + 1;
            Volatile.Write(ref _initialized, 1);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        EnsureInitialized();
        var rows = Prepare(changes, withPayload: true);
        var range = await _database.WriteAsync((c, t) => Insert(c, t, rows, state), cancellationToken).ConfigureAwait(false);
        Remember(range, changes, state);
        return range;
    }

    /// <summary>Writes the changes to the source and appends them as committed entries, atomically and durably.</summary>
    public ValueTask<LsnRange> AppendAndApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken) =>
        AppendAndApplyAsync(changes, null, cancellationToken);

    /// <inheritdoc />
    public ValueTask<LsnRange> AppendAndApplyAsync(IReadOnlyList<EntityChange> changes, LogCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        return AppendAndApplyCoreAsync(changes, checkpoint, (c, t) => Documents.ApplyWithin(c, t, changes), null, cancellationToken);
    }

    /// <summary>
    /// The one shape of every coupled write: <paramref name="apply"/> writes the source, then the changes are appended as
    /// committed entries and the checkpoint saved, all in one savepoint, so if the source rejects, neither exists.
    /// </summary>
    /// <param name="changes">The changes; <paramref name="apply"/> may replace elements of an array (restamped versions),
    /// and the log then records the replacements.</param>
    /// <param name="checkpoint">A checkpoint saved with the append, or null.</param>
    /// <param name="apply">Writes the source inside the savepoint.</param>
    /// <param name="afterAppend">Runs inside the savepoint with the appended range, or null.</param>
    /// <param name="cancellationToken">Cancels before the write starts.</param>
    private async ValueTask<LsnRange> AppendAndApplyCoreAsync(
        IReadOnlyList<EntityChange> changes,
        LogCheckpoint? checkpoint,
        Action<SqliteConnection, SqliteTransaction> apply,
        Action<SqliteConnection, SqliteTransaction, LsnRange>? afterAppend,
        CancellationToken cancellationToken)
    {
        EnsureInitialized();
        var rows = Prepare(changes, withPayload: false);
        try
        {
            var range = await _database.WriteAsync((c, t) =>
            {
                apply(c, t);
                for (var i = 0; i < rows.Length; i++)
                {
                    if (!ReferenceEquals(rows[i].Change, changes[i]))
                    {
                        rows[i] = rows[i] with { Change = changes[i] };
                    }
                }

                var appended = Insert(c, t, rows, LogEntryState.Committed);
                if (checkpoint is { } saved)
                {
                    WriteCheckpoint(c, t, saved.Name, saved.Value);
                }

                afterAppend?.Invoke(c, t, appended);
                return appended;
            }, cancellationToken).ConfigureAwait(false);
            Remember(range, changes, LogEntryState.Committed);
            return range;
        }
        catch (SqliteException ex)
        {
            throw new SyncStoreException($"SQLite source {SafeText.Quote(Documents.Name)} rejected the write: {SafeText.Text(ex.Message)}", SqliteDatabase.IsTransient(ex), Documents.Name, changes[0].Key, "apply", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken)
    {
        await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;
            command.CommandText = "UPDATE log_entries SET state = $s WHERE lsn BETWEEN $f AND $l AND state = 0";
            command.Parameters.AddWithValue("$s", (int)state);
            command.Parameters.AddWithValue("$f", range.First);
            command.Parameters.AddWithValue("$l", range.Last);
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
        for (var lsn = range.First; lsn <= range.Last; lsn++)
        {
            _tail.Decide(lsn, state);
        }
    }

    /// <inheritdoc />
    public async ValueTask<LogReadResult> ReadCommittedAsync(long afterLsn, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);

        // Dispatchers that keep up read the head of the log from memory; records that this process did not write
        // (or that left the cache) are read, checksummed and decoded from the database.
        var served = afterLsn;
        var count = 0;
        while (count < maxCount && _tail.Get(served + 1) is { } cached)
        {
            if (cached.State == LogEntryState.Pending)
            {
                return new LogReadResult(served, true);
            }

            served++;
            if (cached.State == LogEntryState.Committed)
            {
                destination.Add(cached);
                count++;
            }
        }

        if (served > afterLsn)
        {
            return new LogReadResult(served, false);
        }

        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = SelectRecords + "WHERE l.lsn > $after ORDER BY l.lsn LIMIT $limit";
        command.Parameters.AddWithValue("$after", afterLsn);
        command.Parameters.AddWithValue("$limit", maxCount);
        using var reader = command.ExecuteReader();
        var through = afterLsn;
        while (reader.Read())
        {
            var state = (LogEntryState)reader.GetInt32(5);
            if (state == LogEntryState.Pending)
            {
                return new LogReadResult(through, true);
            }

            var record = ReadRecord(reader, state);
            through = record.Lsn;
            if (state == LogEntryState.Committed)
            {
                destination.Add(record);
            }
        }

        return new LogReadResult(through, false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LogRecord>> ReadPendingAsync(CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = SelectRecords + "WHERE l.state = 0 ORDER BY l.lsn";
        using var reader = command.ExecuteReader();
        var result = new List<LogRecord>();
        while (reader.Read())
        {
            result.Add(ReadRecord(reader, LogEntryState.Pending));
        }

        return result;
    }

    /// <inheritdoc />
    public ValueTask<long> GetLastLsnAsync(CancellationToken cancellationToken) => ScalarAsync(LastLsnSql);

    /// <inheritdoc />
    public async ValueTask<HlcTimestamp> GetMaxVersionAsync(CancellationToken cancellationToken) =>
        new(await ScalarAsync("SELECT MAX(COALESCE((SELECT MAX(version) FROM log_entries), 0), COALESCE((SELECT MAX(version) FROM documents), 0))").ConfigureAwait(false));

    /// <inheritdoc />
    public async ValueTask<LogRecord?> GetLastEntryForKeyAsync(EntityKey key, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = SelectRecords + "WHERE l.collection = $c AND l.id = $id ORDER BY l.lsn DESC LIMIT 1";
        command.Parameters.AddWithValue("$c", key.Collection);
        command.Parameters.AddWithValue("$id", key.Id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRecord(reader, (LogEntryState)reader.GetInt32(5)) : null;
    }

    /// <inheritdoc />
    public async ValueTask<long> GetCursorAsync(string store, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT lsn FROM cursors WHERE store = $s";
        command.Parameters.AddWithValue("$s", store);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long lsn ? lsn : 0;
    }

    /// <inheritdoc />
    public async ValueTask SetCursorAsync(string store, long lsn, CancellationToken cancellationToken)
    {
        await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;

            // Cursors only move forward, so a late write from a restarted dispatcher can never rewind one.
            command.CommandText = "INSERT INTO cursors (store, lsn) VALUES ($s, $l) ON CONFLICT (store) DO UPDATE SET lsn = excluded.lsn WHERE excluded.lsn > cursors.lsn";
            command.Parameters.AddWithValue("$s", store);
            command.Parameters.AddWithValue("$l", lsn);
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<string?> GetCheckpointAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM checkpoints WHERE name = $n";
        command.Parameters.AddWithValue("$n", name);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    /// <inheritdoc />
    public async ValueTask SetCheckpointAsync(string name, string? value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await _database.WriteAsync((c, t) => WriteCheckpoint(c, t, name, value), cancellationToken).ConfigureAwait(false);
    }

    private static int WriteCheckpoint(SqliteConnection connection, SqliteTransaction transaction, string name, string? value)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = value is null
            ? "DELETE FROM checkpoints WHERE name = $n"
            : "INSERT INTO checkpoints (name, value) VALUES ($n, $v) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        command.Parameters.AddWithValue("$n", name);
        if (value is not null)
        {
            command.Parameters.AddWithValue("$v", value);
        }

        return command.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> ListCheckpointsAsync(string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();

        // Filtered here rather than with LIKE: a prefix may hold '%' or '_', and the match must be ordinal. The table
        // holds a handful of rows per running operation.
        command.CommandText = "SELECT name FROM checkpoints";
        var names = new List<string>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (reader.Read())
        {
            var name = reader.GetString(0);
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <inheritdoc />
    public async ValueTask AddDeadLetterAsync(string store, LogRecord record, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;
            command.CommandText = """
                INSERT INTO dead_letters (store, lsn, collection, entity_id, kind, version, reason, created_at)
                VALUES ($s, $l, $c, $id, $k, $v, $r, $at)
                """;
            command.Parameters.AddWithValue("$s", store);
            command.Parameters.AddWithValue("$l", record.Lsn);
            command.Parameters.AddWithValue("$c", record.Change.Key.Collection);
            command.Parameters.AddWithValue("$id", record.Change.Key.Id);
            command.Parameters.AddWithValue("$k", (int)record.Change.Kind);
            command.Parameters.AddWithValue("$v", record.Change.Version.Value);
            command.Parameters.AddWithValue("$r", reason);
            command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? store, int maxCount, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, store, lsn, collection, entity_id, kind, version, reason, created_at FROM dead_letters WHERE ($s IS NULL OR store = $s) ORDER BY id LIMIT $n";
        command.Parameters.AddWithValue("$s", (object?)store ?? DBNull.Value);
        command.Parameters.AddWithValue("$n", maxCount);
        return ReadDeadLetters(command);
    }

    /// <inheritdoc />
    public async ValueTask<DeadLetter?> GetDeadLetterAsync(string store, EntityKey key, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, store, lsn, collection, entity_id, kind, version, reason, created_at FROM dead_letters WHERE store = $s AND collection = $c AND entity_id = $id ORDER BY id DESC LIMIT 1";
        command.Parameters.AddWithValue("$s", store);
        command.Parameters.AddWithValue("$c", key.Collection);
        command.Parameters.AddWithValue("$id", key.Id);
        var letters = ReadDeadLetters(command);
        return letters.Count == 0 ? null : letters[0];
    }

    /// <inheritdoc />
    public async ValueTask<int> CountDeadLettersAsync(LsnRange range, CancellationToken cancellationToken)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM dead_letters WHERE lsn BETWEEN $f AND $l";
        command.Parameters.AddWithValue("$f", range.First);
        command.Parameters.AddWithValue("$l", range.Last);
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveDeadLetterAsync(long id, CancellationToken cancellationToken) =>
        await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;
            command.CommandText = "DELETE FROM dead_letters WHERE id = $id";
            command.Parameters.AddWithValue("$id", id);
            return command.ExecuteNonQuery() > 0;
        }, cancellationToken).ConfigureAwait(false);

    /// <summary>Closes the database.</summary>
    public ValueTask DisposeAsync() => _database.DisposeAsync();

    private void EnsureInitialized()
    {
        if (Volatile.Read(ref _initialized) == 0)
        {
            throw new InvalidOperationException($"The change log at {SafeText.Quote(DatabasePath)} is not initialised; call InitializeAsync first (the engine does this at start-up).");
        }
    }

    private void Remember(LsnRange range, IReadOnlyList<EntityChange> changes, LogEntryState state)
    {
        for (var i = 0; i < changes.Count; i++)
        {
            _tail.Put(new LogRecord(range.First + i, changes[i], state));
        }
    }

    private static PreparedRow[] Prepare(IReadOnlyList<EntityChange> changes, bool withPayload)
    {
        // Encoding happens on the caller's thread, so the single writer only runs SQL.
        var rows = new PreparedRow[changes.Count];
        for (var i = 0; i < rows.Length; i++)
        {
            var change = changes[i];
            rows[i] = new PreparedRow(change, SqliteCodec.HashToBlob(change.ContentHash), change.Entity is null || !withPayload ? null : EntityEncoding.EncodeToArray(change.Entity));
        }

        return rows;
    }

    private LsnRange Insert(SqliteConnection connection, SqliteTransaction transaction, PreparedRow[] rows, LogEntryState state)
    {
        var first = _nextLsn;
        try
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO log_entries (lsn, collection, id, kind, version, state, hash, payload, checksum) VALUES ($lsn, $c, $id, $k, $v, $s, $h, $p, $cs)";
            var lsn = command.Parameters.Add("$lsn", SqliteType.Integer);
            var c = command.Parameters.Add("$c", SqliteType.Text);
            var id = command.Parameters.Add("$id", SqliteType.Text);
            var k = command.Parameters.Add("$k", SqliteType.Integer);
            var v = command.Parameters.Add("$v", SqliteType.Integer);
            var s = command.Parameters.Add("$s", SqliteType.Integer);
            var h = command.Parameters.Add("$h", SqliteType.Blob);
            var p = command.Parameters.Add("$p", SqliteType.Blob);
            var cs = command.Parameters.Add("$cs", SqliteType.Integer);
            s.Value = (int)state;
            foreach (var row in rows)
            {
                var change = row.Change;
                var number = _nextLsn++;
                lsn.Value = number;
                c.Value = change.Key.Collection;
                id.Value = change.Key.Id;
                k.Value = (int)change.Kind;
                v.Value = change.Version.Value;
                h.Value = row.Hash;
                p.Value = (object?)row.Payload ?? DBNull.Value;
                cs.Value = unchecked((long)LogRecordChecksum.Compute(number, change.Kind, change.Version.Value, row.Hash, change.Key.Collection, change.Key.Id, row.Payload));
                command.ExecuteNonQuery();
            }

            return new LsnRange(first, _nextLsn - 1);
        }
        catch
        {
            // The savepoint rolls the rows back; give their numbers back too.
            _nextLsn = first;
            throw;
        }
    }

    private static LogRecord ReadRecord(SqliteDataReader reader, LogEntryState state)
    {
        var lsn = reader.GetInt64(0);
        try
        {
            var collection = reader.GetString(1);
            var id = reader.GetString(2);
            var kind = (ChangeKind)reader.GetInt32(3);
            var version = reader.GetInt64(4);
            var hash = (byte[])reader[6];
            var payload = reader.IsDBNull(7) ? null : (byte[])reader[7];
            var stored = unchecked((ulong)reader.GetInt64(8));
            var actual = LogRecordChecksum.Compute(lsn, kind, version, hash, collection, id, payload);
            if (stored != actual)
            {
                throw new ChangeLogCorruptedException(
                    $"Change log record at LSN {lsn} ({SafeText.Quote(collection + "/" + id)}) fails its checksum: stored 0x{stored:X16}, computed 0x{actual:X16}. The record was altered or damaged on disk.",
                    lsn,
                    "checksum");
            }

            var key = new EntityKey(collection, id);
            if (kind == ChangeKind.Delete)
            {
                return new LogRecord(lsn, EntityChange.Delete(key, new HlcTimestamp(version)), state);
            }

            if (kind != ChangeKind.Upsert)
            {
                throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} has the unknown kind {(int)kind}.", lsn, "kind");
            }

            if (payload is null)
            {
                return ReadFromSource(reader, lsn, key, version, state);
            }

            var entity = EntityEncoding.Decode(payload);
            if (entity.Key != key)
            {
                throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} is for {SafeText.Quote(key)} but its payload encodes {SafeText.Quote(entity.Key)}.", lsn, "payload");
            }

            return new LogRecord(lsn, EntityChange.Upsert(entity, new HlcTimestamp(version), SqliteCodec.BlobToHash(hash)), state);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} cannot be decoded: {SafeText.Text(ex.Message)}", lsn, "payload", ex);
        }
    }

    private static LogRecord ReadFromSource(SqliteDataReader reader, long lsn, EntityKey key, long version, LogEntryState state)
    {
        if (reader.IsDBNull(9))
        {
            throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} refers to {SafeText.Quote(key)}, which the source does not hold.", lsn, "payload");
        }

        var sourceVersion = reader.GetInt64(9);
        if (sourceVersion < version)
        {
            throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} has version {new HlcTimestamp(version)} but the source holds the older {new HlcTimestamp(sourceVersion)} for {SafeText.Quote(key)}.", lsn, "version");
        }

        if (reader.GetInt64(11) != 0)
        {
            return new LogRecord(lsn, EntityChange.Delete(key, new HlcTimestamp(sourceVersion)), state);
        }

        var entity = new SyncEntity(
            key,
            reader.IsDBNull(12) ? [] : (byte[])reader[12],
            SqliteCodec.BlobToVector(reader.IsDBNull(13) ? null : (byte[])reader[13]),
            SqliteCodec.BlobToEdges(reader.IsDBNull(14) ? null : (byte[])reader[14]));
        return new LogRecord(lsn, EntityChange.Upsert(entity, new HlcTimestamp(sourceVersion), SqliteCodec.BlobToHash((byte[])reader[10])), state);
    }

    private static List<DeadLetter> ReadDeadLetters(SqliteCommand command)
    {
        var result = new List<DeadLetter>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add(new DeadLetter(
                reader.GetInt64(0),
                reader.GetString(1),
                reader.GetInt64(2),
                EntityKey.Trusted(reader.GetString(3), reader.GetString(4)),
                (ChangeKind)reader.GetInt32(5),
                new HlcTimestamp(reader.GetInt64(6)),
                reader.GetString(7),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8))));
        }

        return result;
    }

    private async ValueTask<long> ScalarAsync(string sql)
    {
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync().ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private sealed record PreparedRow(EntityChange Change, byte[] Hash, byte[]? Payload);
}
