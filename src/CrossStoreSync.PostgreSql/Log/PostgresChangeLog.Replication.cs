using System.Data;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Replication;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>
/// Replication between nodes (DESIGN.md §7): the log's id (<c>log_meta</c>), the states of the keys the log touched,
/// received states applied in one transaction with their decisions, and conflicts (<c>conflicts</c>, numbered from
/// <c>conflict_head</c>). The causal histories live next to the documents (see <see cref="PostgresDocumentStore"/>).
/// Works only with the document store this log commits with.
/// </summary>
public sealed partial class PostgresChangeLog : IReplicationLog
{
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
            throw new SyncStoreException($"PostgreSQL source {SafeText.Quote(documents.Name)} rejected the write: {SafeText.Text(ex.Message)}", PostgresSql.IsTransient(ex), documents.Name, changes[0].Key, "apply", ex);
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
            var states = keys.Count == 0 ? new Dictionary<EntityKey, StoredState>() : await documents.ReadStatesWithinAsync(connection, transaction, keys, lockRows: false, withContent: true, cancellationToken).ConfigureAwait(false);
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
            throw new SyncStoreException($"PostgreSQL source {SafeText.Quote(documents.Name)} failed to apply {states.Count} replicated state(s) from node {fromNode}: {SafeText.Text(ex.Message)}", PostgresSql.IsTransient(ex), documents.Name, states.Count == 1 ? states[0].Change.Key : null, "apply replicated", ex);
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
            // Version, history and hash first; the content (kilobytes per row) only for the keys in conflict, the one
            // case that looks at it (the rows are locked already, so the second read sees the same states).
            var stored = await documents.ReadStatesWithinAsync(connection, transaction, keys, lockRows: true, withContent: false, cancellationToken).ConfigureAwait(false);
            var conflicting = keys.Where(k => stored.TryGetValue(k, out var local) && ReplicationDecisions.NeedsStoredContent(states[open[k]], local)).ToList();
            if (conflicting.Count > 0)
            {
                foreach (var (key, state) in await documents.ReadStatesWithinAsync(connection, transaction, conflicting, lockRows: false, withContent: true, cancellationToken).ConfigureAwait(false))
                {
                    stored[key] = state;
                }
            }

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
}
