using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>
/// Replication between nodes (DESIGN.md §7), used by the coupled <see cref="Log.PostgresChangeLog"/>: each row keeps its
/// causal history (<c>vv jsonb</c>, node id → version, NULL while the state was written here with no history from other
/// nodes) and the node it was received from (<c>from_node</c>, NULL for a state written here).
/// </summary>
public sealed partial class PostgresDocumentStore
{
    // The unnest of UpsertRows ($1 … $11) plus each row's history ($12, JSON text) and sender ($13).
    private const string ReplicatedRows = """
        unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::boolean[], $6::text[], $8::bytea[], $9::integer[], $10::integer[], $11::bytea[], $12::text[], $13::integer[])
            AS u(id, version, hash, bucket, deleted, origin, raw, voff, vlen, edges, vv, from_node)
        """;

    // A decided state over a row the transaction holds locked: the guard only confirms the decision.
    private const string ReplicatedUpdateSql = """
        UPDATE {0} AS t SET
            version = u.version, hash = u.hash, bucket = u.bucket, deleted = u.deleted, origin = u.origin,
            document = convert_from(u.raw, 'UTF8')::jsonb, document_raw = u.raw,
            vector = CASE WHEN u.vlen > 0 THEN ($7::real[])[u.voff:u.voff + u.vlen - 1] END, edges = u.edges,
            vv = u.vv::jsonb, from_node = u.from_node
        FROM {1}
        WHERE t.id = u.id AND t.version < u.version
        RETURNING t.id
        """;

    // A decided state for a key the transaction found absent. Absent rows cannot be locked, so a row another
    // transaction inserted since is left alone (DO NOTHING) and reported: the caller decides again against it.
    private const string ReplicatedInsertSql = """
        INSERT INTO {0} AS t (id, version, hash, bucket, deleted, origin, document, document_raw, vector, edges, vv, from_node)
        SELECT u.id, u.version, u.hash, u.bucket, u.deleted, u.origin, convert_from(u.raw, 'UTF8')::jsonb, u.raw,
               CASE WHEN u.vlen > 0 THEN ($7::real[])[u.voff:u.voff + u.vlen - 1] END, u.edges, u.vv::jsonb, u.from_node
        FROM {1}
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """;

    private const string MergeHistorySql = """
        UPDATE {0} AS t SET vv = u.vv::jsonb
        FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id, version, vv)
        WHERE t.id = u.id AND t.version = u.version
        """;

    /// <summary>
    /// Applies a write made on this node inside the caller's transaction (see <see cref="ApplyWithinAsync"/>). A change
    /// the version guard refuses — a state received from another node after the change took its version is newer — is
    /// replaced in <paramref name="changes"/> by <paramref name="restamp"/>'s and written on top of that state, in the
    /// same transaction.
    /// </summary>
    /// <remarks>
    /// A restamped change that is refused again lost to a state whose version this process's clock has not observed:
    /// one written by another process sharing this database (each observes only what passes through it). It then loses
    /// as every write that meets a newer one does, and is logged like one; the stored state stays.
    /// </remarks>
    /// <exception cref="SyncStoreException">A change is invalid (permanent), or the server failed (transient per SQLSTATE).</exception>
    internal async Task ApplyLocalWithinAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, EntityChange[] changes, Func<EntityChange, EntityChange> restamp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(restamp);
        if (changes.Length == 0)
        {
            return;
        }

        var groups = Prepare(changes);
        try
        {
            var refused = await WriteAsync(connection, transaction, groups, remember: false, reportRefused: true, cancellationToken).ConfigureAwait(false);
            if (refused!.Count == 0)
            {
                return;
            }

            var again = new List<EntityChange>(refused.Count);
            for (var i = 0; i < changes.Length; i++)
            {
                if (refused.Contains(changes[i].Key))
                {
                    changes[i] = restamp(changes[i]);
                    again.Add(changes[i]);
                }
            }

            await WriteAsync(connection, transaction, Prepare(again), remember: false, reportRefused: false, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            ForgetAll(groups);
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} found a collection table missing: {SafeText.Text(ex.MessageText)}. Retry the transaction.", true, Name, changes.Length == 1 ? changes[0].Key : null, "apply", ex);
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "apply", changes.Length == 1 ? changes[0].Key : null);
        }
    }

    /// <summary>Makes sure the collections' tables exist, inside the caller's transaction (created ones are remembered when a later call sees them).</summary>
    /// <exception cref="NpgsqlException">The server failed (not translated: the caller owns the transaction).</exception>
    internal Task EnsureTablesWithinAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyCollection<string> collections, CancellationToken cancellationToken) =>
        _tables.EnsureAsync(connection, transaction, collections, remember: false, cancellationToken);

    /// <summary>
    /// Writes decided states (with their histories and senders) and grows histories in the caller's transaction, all in
    /// one round trip. Returns the keys of <see cref="DecidedWrite.Existed"/>-false writes whose row another transaction
    /// inserted since the states were read: nothing was written for them, and they must be decided again.
    /// </summary>
    /// <exception cref="SyncStoreException">A state is invalid for this store (permanent).</exception>
    /// <exception cref="InvalidOperationException">The guard refused a state written over a locked row (a decision older than what it read).</exception>
    /// <exception cref="NpgsqlException">The server failed (not translated: the caller owns the transaction).</exception>
    internal async Task<List<EntityKey>> WriteDecidedWithinAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<DecidedWrite> writes, CancellationToken cancellationToken)
    {
        var taken = new List<EntityKey>();
        if (writes.Count == 0)
        {
            return taken;
        }

        var byCollection = new SortedDictionary<string, (List<DecidedWrite> Updates, List<DecidedWrite> Inserts, List<DecidedWrite> Merges)>(StringComparer.Ordinal);
        foreach (var write in writes)
        {
            if (write.Change is { } change)
            {
                Validate(change);
            }

            var collection = write.Key.Collection;
            if (!byCollection.TryGetValue(collection, out var lists))
            {
                byCollection[collection] = lists = ([], [], []);
            }

            (write.Change is null ? lists.Merges : write.Existed ? lists.Updates : lists.Inserts).Add(write);
        }

        var kinds = new List<(string Collection, List<DecidedWrite> Rows, bool Insert)>();
        await using var batch = new NpgsqlBatch(connection, transaction);
        foreach (var (collection, lists) in byCollection)
        {
            var table = _tables.Qualified(collection);
            foreach (var (rows, sql, insert) in new[] { (lists.Updates, ReplicatedUpdateSql, false), (lists.Inserts, ReplicatedInsertSql, true) })
            {
                if (rows.Count == 0)
                {
                    continue;
                }

                var command = new NpgsqlBatchCommand(string.Format(CultureInfo.InvariantCulture, sql, table, ReplicatedRows));
                BindDecided(command.Parameters, rows);
                batch.BatchCommands.Add(command);
                kinds.Add((collection, rows, insert));
            }

            if (lists.Merges.Count > 0)
            {
                var command = new NpgsqlBatchCommand(string.Format(CultureInfo.InvariantCulture, MergeHistorySql, table));
                BindMerges(command.Parameters, lists.Merges);
                batch.BatchCommands.Add(command);
            }
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (collection, rows, insert) in kinds)
        {
            written.Clear();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                written.Add(reader.GetString(0));
            }

            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            foreach (var row in rows)
            {
                if (written.Contains(row.Key.Id))
                {
                    continue;
                }

                if (insert)
                {
                    taken.Add(row.Key);
                    continue;
                }

                // The decision read this row locked in the same transaction, so a refusal means a decision that is not
                // newer than what it read: fail the batch rather than log a state the source lacks.
                throw new InvalidOperationException($"The source refused the replicated state of {SafeText.Quote(row.Key)} at version {row.Change!.Version}.");
            }
        }

        return taken;
    }

    private static void BindDecided(NpgsqlParameterCollection parameters, List<DecidedWrite> rows)
    {
        // Rows in id order, like every write of this store, so that concurrent transactions lock them in one order.
        rows.Sort(static (a, b) => string.CompareOrdinal(a.Key.Id, b.Key.Id));
        var changes = new List<EntityChange>(rows.Count);
        var histories = new string?[rows.Count];
        var senders = new int?[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            changes.Add(rows[i].Change!);
            histories[i] = rows[i].History.ToJson();
            senders[i] = rows[i].ReceivedFrom;
        }

        UpsertRows.Bind(parameters, changes, 0, changes.Count);
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = histories });
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, Value = senders });
    }

    private static void BindMerges(NpgsqlParameterCollection parameters, List<DecidedWrite> rows)
    {
        var ids = new string[rows.Count];
        var versions = new long[rows.Count];
        var histories = new string?[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            ids[i] = rows[i].Key.Id;
            versions[i] = rows[i].StoredVersion.Value;
            histories[i] = rows[i].History.ToJson();
        }

        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = ids });
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, Value = versions });
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = histories });
    }
}

/// <summary>A decided replication write for <see cref="PostgresDocumentStore.WriteDecidedWithinAsync"/>.</summary>
/// <param name="Key">The entity.</param>
/// <param name="Change">The state to write, or null to grow the stored history only.</param>
/// <param name="History">The history to store.</param>
/// <param name="ReceivedFrom">The node the written state came from, or null for a new state of this node.</param>
/// <param name="Existed">True when the decision read a stored row (locked by the transaction).</param>
/// <param name="StoredVersion">The version of that row (for a history-only update).</param>
internal sealed record DecidedWrite(EntityKey Key, EntityChange? Change, VersionVector History, int? ReceivedFrom, bool Existed, HlcTimestamp StoredVersion);
