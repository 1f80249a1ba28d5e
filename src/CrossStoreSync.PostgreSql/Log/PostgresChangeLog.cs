using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Stores;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>
/// The change log in PostgreSQL: a transactional outbox shared by every process that writes or dispatches it.
/// </summary>
/// <remarks>
/// <para>
/// Sequence numbers are dense and follow commit order: an append takes the next numbers by updating the single
/// <c>log_head</c> row, whose row lock it holds until it commits, so a reader's snapshot always sees a gap-free prefix
/// of the log. (With a sequence, a transaction holding LSN 9 can commit after one holding LSN 10, and a reader that
/// saw 10 would step over 9 for good.) Only the LSN assignment and the commit are serialised; documents are written
/// before the lock is taken.
/// </para>
/// <para>
/// When the source of truth is a <see cref="PostgresDocumentStore"/> in the same database, the document write and the
/// append commit in one transaction (<see cref="ISourceCoupledChangeLog.AppendAndApplyAsync"/>): there is no moment in
/// which one exists without the other. Cursors, checkpoints and dead letters live in the same database.
/// </para>
/// <para>
/// Scale-out (<see cref="IPartitionedChangeLog"/>): each entry belongs to the partition of its key; several processes
/// dispatch the log, each holding leases on some partitions (claimed with <c>FOR UPDATE SKIP LOCKED</c>, timed by the
/// database clock so machines need not agree on time). Each record carries an XXH64 checksum
/// (<see cref="LogRecordChecksum"/>); a mismatch is reported as <see cref="ChangeLogCorruptedException"/>.
/// </para>
/// <para>
/// Replication between nodes (<see cref="IReplicationLog"/>, DESIGN.md §7) works when the log commits with its document
/// store: causal histories are kept next to the documents, and received states are applied in one transaction with
/// their log entries, conflict records and the puller's cursor.
/// </para>
/// <para>Thread-safe; uses connections from the <see cref="NpgsqlDataSource"/> it is given (which it does not own).</para>
/// </remarks>
public sealed partial class PostgresChangeLog : ISourceCoupledChangeLog, IPartitionedChangeLog, IChangeLogRetention
{
    private const string RecordColumns = "lsn, collection, id, kind, version, state, hash, payload, checksum";
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresChangeLogOptions _options;
    private readonly PostgresDocumentStore? _documents;
    private readonly string _s;
    private volatile bool _initialized;

    /// <summary>Creates a change log for a source of truth elsewhere (its entries are pending until the source confirms).</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="options">Options; validated here.</param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public PostgresChangeLog(NpgsqlDataSource dataSource, PostgresChangeLogOptions? options = null)
        : this(dataSource, options, null)
    {
    }

    /// <summary>Creates a change log that commits in one transaction with <paramref name="documents"/> (a transactional outbox).</summary>
    /// <param name="dataSource">The database; the same one <paramref name="documents"/> uses.</param>
    /// <param name="documents">The source of truth in the same database.</param>
    /// <param name="options">Options; validated here.</param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public PostgresChangeLog(NpgsqlDataSource dataSource, PostgresDocumentStore documents, PostgresChangeLogOptions? options = null)
        : this(dataSource, options, documents ?? throw new ArgumentNullException(nameof(documents)))
    {
    }

    private PostgresChangeLog(NpgsqlDataSource dataSource, PostgresChangeLogOptions? options, PostgresDocumentStore? documents)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _options = options ?? new PostgresChangeLogOptions();
        _options.Validate();
        _dataSource = dataSource;
        _documents = documents;
        _s = PostgresSql.Quote(_options.Schema);
    }

    /// <inheritdoc />
    public IDocumentStore? CoupledSource => _documents;

    /// <summary>The PostgreSQL document store this log commits with, or null.</summary>
    public PostgresDocumentStore? Documents => _documents;

    /// <inheritdoc />
    /// <remarks><see cref="InitializeAsync"/> checks it against the count the log was created with.</remarks>
    public int PartitionCount => _options.Partitions;

    /// <summary>The schema of the log's tables.</summary>
    public string Schema => _options.Schema;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        // Several processes may start at once against a new database; CREATE ... IF NOT EXISTS races on the catalogue.
        await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({PostgresSql.SchemaLockKey})", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, $"""
            CREATE SCHEMA IF NOT EXISTS {_s};
            CREATE TABLE IF NOT EXISTS {_s}.log_head (
                id int PRIMARY KEY CHECK (id = 1),
                last_lsn bigint NOT NULL,
                max_version bigint NOT NULL,
                partitions int NOT NULL);
            CREATE TABLE IF NOT EXISTS {_s}.log_entries (
                lsn bigint PRIMARY KEY,
                part int NOT NULL,
                collection text NOT NULL,
                id text NOT NULL,
                kind smallint NOT NULL,
                version bigint NOT NULL,
                state smallint NOT NULL,
                hash bytea NOT NULL,
                payload bytea,
                checksum bigint NOT NULL);
            CREATE INDEX IF NOT EXISTS log_entries_part ON {_s}.log_entries (part, lsn);
            CREATE INDEX IF NOT EXISTS log_entries_key ON {_s}.log_entries (collection, id, lsn);
            CREATE INDEX IF NOT EXISTS log_entries_pending ON {_s}.log_entries (lsn) WHERE state = 0;
            CREATE TABLE IF NOT EXISTS {_s}.cursors (store text PRIMARY KEY, lsn bigint NOT NULL);
            CREATE TABLE IF NOT EXISTS {_s}.partition_cursors (
                store text NOT NULL,
                part int NOT NULL,
                lsn bigint NOT NULL,
                owner text,
                lease_until timestamptz,
                PRIMARY KEY (store, part));
            CREATE TABLE IF NOT EXISTS {_s}.workers (
                store text NOT NULL,
                worker text NOT NULL,
                seen_until timestamptz NOT NULL,
                PRIMARY KEY (store, worker));
            CREATE TABLE IF NOT EXISTS {_s}.checkpoints (name text PRIMARY KEY, value text NOT NULL);
            CREATE TABLE IF NOT EXISTS {_s}.dead_letters (
                id bigserial PRIMARY KEY,
                store text NOT NULL,
                lsn bigint NOT NULL,
                collection text NOT NULL,
                entity_id text NOT NULL,
                kind smallint NOT NULL,
                version bigint NOT NULL,
                reason text NOT NULL,
                created_at timestamptz NOT NULL);
            CREATE INDEX IF NOT EXISTS dead_letters_key ON {_s}.dead_letters (store, collection, entity_id);
            CREATE INDEX IF NOT EXISTS dead_letters_lsn ON {_s}.dead_letters (lsn);
            CREATE INDEX IF NOT EXISTS dead_letters_created ON {_s}.dead_letters (created_at);
            CREATE TABLE IF NOT EXISTS {_s}.log_truncation (id int PRIMARY KEY CHECK (id = 1), through bigint NOT NULL);
            """, cancellationToken).ConfigureAwait(false);

        await ExecuteAsync(connection, transaction, ReplicationTablesSql, cancellationToken).ConfigureAwait(false);
        await InitializeReplicationAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await using (var head = new NpgsqlCommand($"INSERT INTO {_s}.log_head (id, last_lsn, max_version, partitions) VALUES (1, 0, 0, $1) ON CONFLICT (id) DO NOTHING; ", connection, transaction))
        {
            head.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _options.Partitions });
            await head.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var read = new NpgsqlCommand($"SELECT partitions FROM {_s}.log_head WHERE id = 1", connection, transaction))
        {
            var stored = (int)(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            if (stored != _options.Partitions)
            {
                throw new InvalidOperationException(
                    $"The change log in schema {SafeText.Quote(_options.Schema)} was created with {stored} partitions, but PostgresChangeLogOptions.Partitions is {_options.Partitions}. " +
                    $"The count is fixed when the log is created: set Partitions to {stored}.");
            }
        }

        await CreateCompensationTablesAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        _initialized = true;
    }

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        EnsureInitialized();
        var rows = Prepare(changes);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var range = await InsertAsync(connection, transaction, rows, state, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return range;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("append", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAndApplyAsync(IReadOnlyList<EntityChange> changes, LogCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        EnsureInitialized();
        var documents = _documents ?? throw new InvalidOperationException("This change log has no PostgreSQL document store to commit with; append pending entries and apply the source yourself.");
        var rows = Prepare(changes);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

            // Documents first, outside the head lock; then the numbers and the entries; then one commit for all.
            await documents.ApplyWithinAsync(connection, transaction, changes, cancellationToken).ConfigureAwait(false);
            var range = await InsertAsync(connection, transaction, rows, LogEntryState.Committed, cancellationToken).ConfigureAwait(false);
            if (checkpoint is { } saved)
            {
                await WriteCheckpointAsync(connection, transaction, saved.Name, saved.Value, cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return range;
        }
        catch (NpgsqlException ex)
        {
            throw new SyncStoreException($"PostgreSQL source {SafeText.Quote(documents.Name)} rejected the write: {SafeText.Text(ex.Message)}", PostgresSql.IsTransient(ex), documents.Name, changes[0].Key, "apply", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"UPDATE {_s}.log_entries SET state = $1 WHERE lsn BETWEEN $2 AND $3 AND state = 0", connection);
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)state });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = range.First });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = range.Last });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<LogReadResult> ReadCommittedAsync(long afterLsn, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // One statement, one snapshot: LSNs are dense and follow commit order, so what it sees is a prefix of the log.
        await using var command = new NpgsqlCommand($"SELECT {RecordColumns} FROM {_s}.log_entries WHERE lsn > $1 ORDER BY lsn LIMIT $2", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterLsn });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var through = afterLsn;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = (LogEntryState)reader.GetInt16(5);
            if (state == LogEntryState.Pending)
            {
                return new LogReadResult(through, true);
            }

            var record = ReadRecord(reader, 0, state);
            through = record.Lsn;
            if (state == LogEntryState.Committed)
            {
                destination.Add(record);
            }
        }

        return new LogReadResult(through, false);
    }

    /// <inheritdoc />
    public async ValueTask<LogReadResult> ReadCommittedAsync(IReadOnlyList<int> partitions, IReadOnlyList<long> afterLsns, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        ArgumentNullException.ThrowIfNull(afterLsns);
        ArgumentNullException.ThrowIfNull(destination);
        if (partitions.Count != afterLsns.Count)
        {
            throw new ArgumentException($"{partitions.Count} partitions but {afterLsns.Count} cursors; pass one cursor per partition.", nameof(afterLsns));
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // The head row and the entries in one statement (one snapshot): when fewer than maxCount entries come back,
        // every given partition holds nothing more up to the head, so their cursors may move to it. The entries are one
        // range scan of the primary key from the lowest cursor, each row kept when its partition is given and it lies
        // after that partition's own cursor; workers usually hold partitions whose cursors are equal or close.
        await using var command = new NpgsqlCommand($"""
            SELECT h.last_lsn, e.lsn, e.collection, e.id, e.kind, e.version, e.state, e.hash, e.payload, e.checksum
            FROM {_s}.log_head h
            LEFT JOIN LATERAL (
                SELECT {RecordColumns} FROM {_s}.log_entries x
                WHERE x.lsn > $4 AND x.part = ANY($1) AND x.lsn > ($2::bigint[])[array_position($1::int[], x.part)]
                ORDER BY x.lsn LIMIT $3) e ON true
            WHERE h.id = 1
            ORDER BY e.lsn
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = [.. partitions] });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. afterLsns] });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterLsns.Count == 0 ? long.MaxValue : afterLsns.Min() });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        long head = 0;
        var through = 0L;
        var count = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            head = reader.GetInt64(0);
            if (reader.IsDBNull(1))
            {
                break;
            }

            var state = (LogEntryState)reader.GetInt16(6);
            if (state == LogEntryState.Pending)
            {
                // Order per key: nothing after a pending entry of a held partition is dispatched yet.
                return new LogReadResult(reader.GetInt64(1) - 1, true);
            }

            var record = ReadRecord(reader, 1, state);
            through = record.Lsn;
            count++;
            if (state == LogEntryState.Committed)
            {
                destination.Add(record);
            }
        }

        return new LogReadResult(count >= maxCount ? through : head, false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LogRecord>> ReadPendingAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT {RecordColumns} FROM {_s}.log_entries WHERE state = 0 ORDER BY lsn", connection);
        return await ReadRecordsAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> GetLastLsnAsync(CancellationToken cancellationToken) =>
        await ScalarInt64Async($"SELECT last_lsn FROM {_s}.log_head WHERE id = 1", cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<HlcTimestamp> GetMaxVersionAsync(CancellationToken cancellationToken) =>
        new(await ScalarInt64Async($"SELECT max_version FROM {_s}.log_head WHERE id = 1", cancellationToken).ConfigureAwait(false));

    /// <inheritdoc />
    public async ValueTask<LogRecord?> GetLastEntryForKeyAsync(EntityKey key, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT {RecordColumns} FROM {_s}.log_entries WHERE collection = $1 AND id = $2 ORDER BY lsn DESC LIMIT 1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Collection });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Id });
        var records = await ReadRecordsAsync(command, cancellationToken).ConfigureAwait(false);
        return records.Count == 0 ? null : records[0];
    }

    /// <inheritdoc />
    /// <remarks>For a store dispatched through partitions, the lowest partition cursor.</remarks>
    public async ValueTask<long> GetCursorAsync(string store, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"""
            SELECT COALESCE((SELECT min(lsn) FROM {_s}.partition_cursors WHERE store = $1), (SELECT lsn FROM {_s}.cursors WHERE store = $1), 0)
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store });
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask SetCursorAsync(string store, long lsn, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // Cursors only move forward, so a late write from a restarted dispatcher can never rewind one.
        await using var command = new NpgsqlCommand($"INSERT INTO {_s}.cursors (store, lsn) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET lsn = excluded.lsn WHERE excluded.lsn > {_s}.cursors.lsn", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lsn });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<string?> GetCheckpointAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT value FROM {_s}.checkpoints WHERE name = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    /// <inheritdoc />
    public async ValueTask SetCheckpointAsync(string name, string? value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await WriteCheckpointAsync(connection, null, name, value, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> ListCheckpointsAsync(string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // starts_with, not LIKE: a prefix may hold '%' or '_'. COLLATE "C" sorts ordinally.
        await using var command = new NpgsqlCommand($"SELECT name FROM {_s}.checkpoints WHERE starts_with(name, $1) ORDER BY name COLLATE \"C\"", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = prefix });
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        // The database's collation is not necessarily bytewise for every character; the contract is ordinal.
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private void EnsureInitialized()
    {
        if (!_initialized)
        {
            throw new InvalidOperationException($"The PostgreSQL change log (schema {SafeText.Quote(_options.Schema)}) is not initialised; call InitializeAsync first (the engine does this at start-up).");
        }
    }

    private async ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("connect", ex);
        }
    }

    private SyncStoreException LogFailure(string operation, NpgsqlException ex) =>
        new($"PostgreSQL change log (schema {SafeText.Quote(_options.Schema)}) failed to {operation}: {SafeText.Text(ex.Message)}", PostgresSql.IsTransient(ex), "change-log", null, operation, ex);

    private PreparedRow[] Prepare(IReadOnlyList<EntityChange> changes)
    {
        // Encoding happens before the transaction, so the head lock is held only for SQL.
        var rows = new PreparedRow[changes.Count];
        for (var i = 0; i < rows.Length; i++)
        {
            var change = changes[i];
            rows[i] = new PreparedRow(change, DocumentCodec.HashToBytes(change.ContentHash), change.Entity is null ? null : EntityEncoding.EncodeToArray(change.Entity), PartitionOf(change.Key, _options.Partitions));
        }

        return rows;
    }

    /// <summary>The partition of a key: its 64-bit key hash modulo the partition count.</summary>
    internal static int PartitionOf(EntityKey key, int partitions) => (int)(KeyHash.Compute(key) % (ulong)partitions);

    private async Task<LsnRange> InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PreparedRow[] rows, LogEntryState state, CancellationToken cancellationToken)
    {
        var maxVersion = 0L;
        foreach (var row in rows)
        {
            maxVersion = Math.Max(maxVersion, row.Change.Version.Value);
        }

        long last;
        await using (var head = new NpgsqlCommand($"UPDATE {_s}.log_head SET last_lsn = last_lsn + $1, max_version = GREATEST(max_version, $2) WHERE id = 1 RETURNING last_lsn", connection, transaction))
        {
            head.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows.Length });
            head.Parameters.Add(new NpgsqlParameter<long> { TypedValue = maxVersion });
            last = (long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var first = last - rows.Length + 1;
        var lsns = new long[rows.Length];
        var parts = new int[rows.Length];
        var collections = new string[rows.Length];
        var ids = new string[rows.Length];
        var kinds = new short[rows.Length];
        var versions = new long[rows.Length];
        var hashes = new byte[rows.Length][];
        var payloads = new byte[]?[rows.Length];
        var checksums = new long[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            var change = row.Change;
            lsns[i] = first + i;
            parts[i] = row.Partition;
            collections[i] = change.Key.Collection;
            ids[i] = change.Key.Id;
            kinds[i] = (short)change.Kind;
            versions[i] = change.Version.Value;
            hashes[i] = row.Hash;
            payloads[i] = row.Payload;
            checksums[i] = unchecked((long)LogRecordChecksum.Compute(lsns[i], change.Kind, change.Version.Value, row.Hash, change.Key.Collection, change.Key.Id, row.Payload));
        }

        await using var insert = new NpgsqlCommand($"""
            INSERT INTO {_s}.log_entries (lsn, part, collection, id, kind, version, state, hash, payload, checksum)
            SELECT u.lsn, u.part, u.collection, u.id, u.kind, u.version, $9, u.hash, u.payload, u.checksum
            FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::smallint[], $6::bigint[], $7::bytea[], $8::bytea[], $10::bigint[])
                AS u(lsn, part, collection, id, kind, version, hash, payload, checksum)
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = lsns });
        insert.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = parts });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = collections });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = kinds });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = versions });
        insert.Parameters.Add(new NpgsqlParameter { Value = hashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)state });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = checksums });
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return new LsnRange(first, last);
    }

    private async Task WriteCheckpointAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string name, string? value, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            value is null
                ? $"DELETE FROM {_s}.checkpoints WHERE name = $1"
                : $"INSERT INTO {_s}.checkpoints (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            connection,
            transaction);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        if (value is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<LogRecord>> ReadRecordsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<LogRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(ReadRecord(reader, 0, (LogEntryState)reader.GetInt16(5)));
        }

        return result;
    }

    /// <summary>Decodes and checks one record whose columns start at <paramref name="o"/> in <see cref="RecordColumns"/> order.</summary>
    private static LogRecord ReadRecord(NpgsqlDataReader reader, int o, LogEntryState state)
    {
        var lsn = reader.GetInt64(o);
        try
        {
            var collection = reader.GetString(o + 1);
            var id = reader.GetString(o + 2);
            var kind = (ChangeKind)reader.GetInt16(o + 3);
            var version = reader.GetInt64(o + 4);
            var hash = reader.GetFieldValue<byte[]>(o + 6);
            var payload = reader.IsDBNull(o + 7) ? null : reader.GetFieldValue<byte[]>(o + 7);
            var stored = unchecked((ulong)reader.GetInt64(o + 8));
            var actual = LogRecordChecksum.Compute(lsn, kind, version, hash, collection, id, payload);
            if (stored != actual)
            {
                throw new ChangeLogCorruptedException(
                    $"Change log record at LSN {lsn} ({SafeText.Quote(collection + "/" + id)}) fails its checksum: stored 0x{stored:X16}, computed 0x{actual:X16}. The record was altered or damaged.",
                    lsn,
                    "checksum");
            }

            var key = new EntityKey(collection, id);
            if (kind == ChangeKind.Delete)
            {
                return new LogRecord(lsn, EntityChange.Delete(key, new HlcTimestamp(version)), state);
            }

            if (kind != ChangeKind.Upsert || payload is null)
            {
                throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} has kind {(int)kind} and {(payload is null ? "no" : "a")} payload.", lsn, "kind");
            }

            var entity = EntityEncoding.Decode(payload);
            if (entity.Key != key)
            {
                throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} is for {SafeText.Quote(key)} but its payload encodes {SafeText.Quote(entity.Key)}.", lsn, "payload");
            }

            if (hash.Length != 16)
            {
                throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} has a {hash.Length}-byte content hash; expected 16.", lsn, "hash");
            }

            return new LogRecord(lsn, EntityChange.Upsert(entity, new HlcTimestamp(version), DocumentCodec.BytesToHash(hash)), state);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Change log record at LSN {lsn} cannot be decoded: {SafeText.Text(ex.Message)}", lsn, "payload", ex);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<long> ScalarInt64Async(string sql, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long value ? value : 0;
    }

    private sealed record PreparedRow(EntityChange Change, byte[] Hash, byte[]? Payload, int Partition);
}
