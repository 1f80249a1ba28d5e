using System.Data;
using System.Globalization;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.PostgreSql.Stores;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>
/// Replication between nodes (DESIGN.md §7): the log's id (<c>log_meta</c>), the states of the keys the log touched,
/// received states applied in one transaction with their decisions, and conflicts (<c>conflicts</c>, numbered from
/// <c>conflict_head</c>). The causal histories live next to the documents (see <see cref="PostgresDocumentStore"/>).
/// Works only with the document store this log commits with.
/// </summary>
public sealed partial class PostgresChangeLog : IReplicationLog
{
    private const string ConflictColumns = "id, collection, entity_id, detected_at, peer, winner, resolution, loser_kind, loser_version, loser_hash, loser_payload";
    private string? _logId;

    /// <summary>The DDL of the replication tables, run by <see cref="InitializeAsync"/> under the DDL lock.</summary>
    private string ReplicationTablesSql => $"""
        CREATE TABLE IF NOT EXISTS {_s}.log_meta (name text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE IF NOT EXISTS {_s}.conflict_head (id int PRIMARY KEY CHECK (id = 1), last_id bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS {_s}.conflicts (
            id bigint PRIMARY KEY,
            collection text NOT NULL,
            entity_id text NOT NULL,
            detected_at timestamptz NOT NULL,
            peer int NOT NULL,
            winner bigint NOT NULL,
            resolution smallint NOT NULL,
            loser_kind smallint NOT NULL,
            loser_version bigint NOT NULL,
            loser_hash bytea NOT NULL,
            loser_payload bytea);
        CREATE INDEX IF NOT EXISTS conflicts_key ON {_s}.conflicts (collection, entity_id, id);
        """;

    /// <summary>Creates the log's identity with the log (kept once created) and the conflict counter.</summary>
    private async Task InitializeReplicationAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        // A puller that sees another id knows this log was reset or re-created, and that its cursor means nothing here.
        await using var batch = new NpgsqlBatch(connection, transaction);
        var logId = new NpgsqlBatchCommand($"INSERT INTO {_s}.log_meta (name, value) VALUES ('log_id', $1) ON CONFLICT (name) DO NOTHING");
        logId.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Guid.NewGuid().ToString("N") });
        batch.BatchCommands.Add(logId);
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"INSERT INTO {_s}.conflict_head (id, last_id) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<string> GetLogIdAsync(CancellationToken cancellationToken)
    {
        if (_logId is { } known)
        {
            return known;
        }

        EnsureInitialized();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT value FROM {_s}.log_meta WHERE name = 'log_id'", connection);
        return _logId = (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction: the document write (with the restamping of refused rows, see
    /// <see cref="PostgresDocumentStore"/>), the log entries of the final versions and the checkpoint.
    /// </remarks>
    public async ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, LogCheckpoint? checkpoint, Func<EntityChange, EntityChange> restamp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(restamp);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Length);
        EnsureInitialized();
        var documents = RequireDocuments();
        var rows = Prepare(changes);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await documents.ApplyLocalWithinAsync(connection, transaction, changes, restamp, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < rows.Length; i++)
            {
                // A restamped change keeps its entity (same payload and hash); only the version, and so the checksum, differ.
                if (!ReferenceEquals(rows[i].Change, changes[i]))
                {
                    rows[i] = rows[i] with { Change = changes[i] };
                }
            }

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
            throw new SyncStoreException($"PostgreSQL source '{documents.Name}' rejected the write: {ex.Message}", PostgresSql.IsTransient(ex), documents.Name, changes[0].Key, "apply", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The entries and the states are read in one REPEATABLE READ snapshot. LSNs are dense and follow commit order, so the
    /// entries are a gap-free prefix; each key's state is the one the source holds in that snapshot, never older than the
    /// entries that touched it, so a puller gets it once however often the key changed in the range.
    /// </remarks>
    public async ValueTask<ReplicationReadResult> ReadReplicationAsync(long afterLsn, int maxEntries, int skipReceivedFrom, Func<string, bool> includeCollection, List<ReplicatedState> destination, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        ArgumentNullException.ThrowIfNull(includeCollection);
        ArgumentNullException.ThrowIfNull(destination);
        EnsureInitialized();
        var documents = RequireDocuments();
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            long head;
            var through = afterLsn;
            var fingerprint = 0L;

            // Per key, the newest entry of the range; keys in first-seen order, LSNs filled in as entries are read.
            var newest = new Dictionary<EntityKey, long>();
            await using (var batch = new NpgsqlBatch(connection, transaction))
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT last_lsn FROM {_s}.log_head WHERE id = 1"));
                var entries = new NpgsqlBatchCommand($"SELECT lsn, state, checksum, collection, id FROM {_s}.log_entries WHERE lsn > $1 ORDER BY lsn LIMIT $2");
                entries.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterLsn });
                entries.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxEntries });
                batch.BatchCommands.Add(entries);
                await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                head = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetInt64(0) : 0;
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var state = (LogEntryState)reader.GetInt16(1);
                    if (state == LogEntryState.Pending)
                    {
                        break;
                    }

                    through = reader.GetInt64(0);
                    fingerprint = reader.GetInt64(2);
                    var collection = reader.GetString(3);
                    if (state == LogEntryState.Committed && includeCollection(collection))
                    {
                        newest[new EntityKey(collection, reader.GetString(4))] = through;
                    }
                }
            }

            var keys = new List<EntityKey>(newest.Keys);
            var states = keys.Count == 0 ? new Dictionary<EntityKey, StoredState>() : await documents.ReadStatesWithinAsync(connection, transaction, keys, lockRows: false, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

            var start = destination.Count;
            foreach (var key in keys)
            {
                // A key without a row had its tombstone purged: there is nothing to send. A state the puller sent
                // here is not sent back (no echo).
                if (states.TryGetValue(key, out var stored) && stored.ReceivedFrom != skipReceivedFrom)
                {
                    destination.Add(new ReplicatedState(newest[key], stored.Change, stored.History));
                }
            }

            destination.Sort(start, destination.Count - start, Comparer<ReplicatedState>.Create(static (a, b) => a.Lsn.CompareTo(b.Lsn)));
            return new ReplicationReadResult(through, fingerprint, Math.Max(head, through));
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("read for replication", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<long?> GetFingerprintAsync(long lsn, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"SELECT checksum FROM {_s}.log_entries WHERE lsn = $1", connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lsn });
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long checksum ? checksum : null;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("read a fingerprint", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The stored rows of the batch's keys are read and locked (<c>SELECT … FOR UPDATE</c>, in (collection, id) order),
    /// so a local write to one of them waits for this transaction, and this one for it: each sees the other's result.
    /// A key absent when read cannot be locked; if another transaction inserts it before this one writes, nothing is
    /// written for it and it is decided again against that row. Then, under the head lock as every append, the log
    /// entries of the written states, the conflicts, the checkpoint, and one commit.
    /// </remarks>
    public async ValueTask<ReplicationApplyResult> ApplyReplicatedAsync(IReadOnlyList<ReplicatedState> states, int fromNode, ReplicationDecider decide, LogCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(decide);
        EnsureInitialized();
        var documents = RequireDocuments();
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var decisions = new ReplicationDecision[states.Count];
            if (states.Count > 0)
            {
                await DecideAndWriteAsync(documents, connection, transaction, states, decide, decisions, cancellationToken).ConfigureAwait(false);
            }

            var written = new List<EntityChange>();
            var conflicts = new List<ConflictRecord>();
            foreach (var decision in decisions)
            {
                if (decision.Action == ReplicationAction.Write)
                {
                    written.Add(decision.Write!);
                }

                conflicts.AddRange(decision.Conflicts ?? []);
            }

            var recorded = conflicts.Count == 0 ? conflicts : await InsertConflictsAsync(connection, transaction, conflicts, cancellationToken).ConfigureAwait(false);
            LsnRange? appended = written.Count == 0 ? null : await InsertAsync(connection, transaction, Prepare(written), LogEntryState.Committed, cancellationToken).ConfigureAwait(false);
            if (checkpoint is { } saved)
            {
                await WriteCheckpointAsync(connection, transaction, saved.Name, saved.Value, cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return new ReplicationApplyResult(appended, decisions, recorded);
        }
        catch (NpgsqlException ex)
        {
            throw new SyncStoreException($"PostgreSQL source '{documents.Name}' failed to apply {states.Count} replicated state(s) from node {fromNode}: {ex.Message}", PostgresSql.IsTransient(ex), documents.Name, states.Count == 1 ? states[0].Change.Key : null, "apply replicated", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoredState>> ReadStatesAsync(IReadOnlyList<EntityKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var documents = RequireDocuments();
        return keys.Count == 0 ? [] : await documents.ReadStatesAsync(keys, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StateDigest>> ScanStateDigestsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (afterId is not null)
        {
            EntityKey.ValidateId(afterId, nameof(afterId));
        }

        return await RequireDocuments().ScanStateDigestsAsync(collection, range, afterId, limit, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ConflictRecord>> ListConflictsAsync(string? collection, string? id, long afterId, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

            // Only the filters given, so that a lookup of one key uses the (collection, entity_id, id) index.
            var sql = new StringBuilder($"SELECT {ConflictColumns} FROM {_s}.conflicts WHERE id > $1");
            await using var command = new NpgsqlCommand { Connection = connection };
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterId });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
            foreach (var (column, value) in new[] { ("collection", collection), ("entity_id", id) })
            {
                if (value is not null)
                {
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });
                    sql.Append(" AND ").Append(column).Append(" = $").Append(command.Parameters.Count.ToString(CultureInfo.InvariantCulture));
                }
            }

            command.CommandText = sql.Append(" ORDER BY id LIMIT $2").ToString();
            var result = new List<ConflictRecord>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                result.Add(ReadConflict(reader));
            }

            return result;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("list conflicts", ex);
        }
    }

    private PostgresDocumentStore RequireDocuments() => _documents ?? throw new InvalidOperationException(
        $"The PostgreSQL change log (schema '{_options.Schema}') has no document store to commit with, so it cannot replicate between nodes; use UsePostgreSql (the log created with its PostgresDocumentStore).");

    /// <summary>
    /// Reads and locks the stored states, asks <paramref name="decide"/> for each and writes the decisions; keys another
    /// transaction inserted in between are read, locked and decided again, until every decision is written.
    /// </summary>
    private static async Task DecideAndWriteAsync(PostgresDocumentStore documents, NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<ReplicatedState> states, ReplicationDecider decide, ReplicationDecision[] decisions, CancellationToken cancellationToken)
    {
        var collections = new HashSet<string>(StringComparer.Ordinal);
        var open = new Dictionary<EntityKey, int>(states.Count);
        for (var i = 0; i < states.Count; i++)
        {
            var key = states[i].Change.Key;
            collections.Add(key.Collection);
            open[key] = i;
        }

        await documents.EnsureTablesWithinAsync(connection, transaction, collections, cancellationToken).ConfigureAwait(false);
        while (open.Count > 0)
        {
            var keys = new List<EntityKey>(open.Keys);
            var stored = await documents.ReadStatesWithinAsync(connection, transaction, keys, lockRows: true, cancellationToken).ConfigureAwait(false);
            var writes = new List<DecidedWrite>(keys.Count);
            foreach (var key in keys)
            {
                var i = open[key];
                var local = stored.GetValueOrDefault(key);
                var decision = decide(states[i], local);
                decisions[i] = decision;
                switch (decision.Action)
                {
                    case ReplicationAction.Write:
                        writes.Add(new DecidedWrite(key, decision.Write!, decision.History, decision.ReceivedFrom, local is not null, local?.Change.Version ?? HlcTimestamp.Zero));
                        break;
                    case ReplicationAction.MergeHistory:
                        writes.Add(new DecidedWrite(key, null, decision.History, null, true, local!.Change.Version));
                        break;
                }
            }

            var taken = await documents.WriteDecidedWithinAsync(connection, transaction, writes, cancellationToken).ConfigureAwait(false);
            var again = new Dictionary<EntityKey, int>(taken.Count);
            foreach (var key in taken)
            {
                again[key] = open[key];
            }

            open = again;
        }
    }

    /// <summary>
    /// Numbers the conflicts from <c>conflict_head</c>, whose row lock is held until commit, so ids follow commit order
    /// and a reader listing after an id never steps over one committed later (a sequence would allow that).
    /// </summary>
    private async Task<List<ConflictRecord>> InsertConflictsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<ConflictRecord> conflicts, CancellationToken cancellationToken)
    {
        long last;
        await using (var head = new NpgsqlCommand($"UPDATE {_s}.conflict_head SET last_id = last_id + $1 WHERE id = 1 RETURNING last_id", connection, transaction))
        {
            head.Parameters.Add(new NpgsqlParameter<long> { TypedValue = conflicts.Count });
            last = (long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var count = conflicts.Count;
        var ids = new long[count];
        var collections = new string[count];
        var entityIds = new string[count];
        var detectedAt = new DateTime[count];
        var peers = new int[count];
        var winners = new long[count];
        var resolutions = new short[count];
        var kinds = new short[count];
        var versions = new long[count];
        var hashes = new byte[count][];
        var payloads = new byte[]?[count];
        var recorded = new List<ConflictRecord>(count);
        for (var i = 0; i < count; i++)
        {
            var conflict = conflicts[i] with { Id = last - count + 1 + i };
            recorded.Add(conflict);
            ids[i] = conflict.Id;
            collections[i] = conflict.Key.Collection;
            entityIds[i] = conflict.Key.Id;
            detectedAt[i] = conflict.DetectedAt.UtcDateTime;
            peers[i] = conflict.PeerNodeId;
            winners[i] = conflict.Winner.Value;
            resolutions[i] = (short)conflict.Resolution;
            kinds[i] = (short)conflict.Loser.Kind;
            versions[i] = conflict.Loser.Version.Value;
            hashes[i] = DocumentCodec.HashToBytes(conflict.Loser.ContentHash);
            payloads[i] = conflict.Loser.Entity is { } entity ? EntityEncoding.EncodeToArray(entity) : null;
        }

        await using var insert = new NpgsqlCommand($"""
            INSERT INTO {_s}.conflicts ({ConflictColumns})
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::bigint[], $7::smallint[], $8::smallint[], $9::bigint[], $10::bytea[], $11::bytea[])
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = collections });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = entityIds });
        insert.Parameters.Add(new NpgsqlParameter { Value = detectedAt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        insert.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = peers });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = winners });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = resolutions });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = kinds });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = versions });
        insert.Parameters.Add(new NpgsqlParameter { Value = hashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return recorded;
    }

    private static ConflictRecord ReadConflict(NpgsqlDataReader reader)
    {
        var id = reader.GetInt64(0);
        try
        {
            var key = new EntityKey(reader.GetString(1), reader.GetString(2));
            var loserVersion = new HlcTimestamp(reader.GetInt64(8));
            var loser = (ChangeKind)reader.GetInt16(7) == ChangeKind.Delete
                ? EntityChange.Delete(key, loserVersion)
                : EntityChange.Upsert(EntityEncoding.Decode(reader.GetFieldValue<byte[]>(10)), loserVersion, DocumentCodec.BytesToHash(reader.GetFieldValue<byte[]>(9)));
            return new ConflictRecord(
                id,
                key,
                new DateTimeOffset(reader.GetDateTime(3), TimeSpan.Zero),
                reader.GetInt32(4),
                new HlcTimestamp(reader.GetInt64(5)),
                loser,
                (ConflictResolutionKind)reader.GetInt16(6));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Conflict record {id} cannot be decoded: {ex.Message}", 0, "conflict", ex);
        }
    }
}
