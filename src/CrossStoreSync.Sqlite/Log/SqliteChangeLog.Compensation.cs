using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Internal;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Log;

/// <summary>
/// Compensation records (<see cref="ISourceCoupledCompensationLog"/>) in table <c>compensations</c>, next to the log:
/// a compensable write's prior state is read from <c>documents</c> and stored in the write's own transaction, and a
/// compensation is decided against <c>documents</c> and written in one transaction, on the single writer.
/// </summary>
public sealed partial class SqliteChangeLog : ISourceCoupledCompensationLog
{
    private const string CompensationColumns =
        "lsn, collection, id, version, kind, state, prior_kind, prior_version, prior_hash, prior_payload, checksum, store, reason, requested_at, compensation_lsn, resolved_version, resolved_at";

    private static void CreateCompensationTables(SqliteConnection connection, SqliteTransaction transaction) =>
        SqliteDatabase.Execute(connection, """
            CREATE TABLE IF NOT EXISTS compensations (
                lsn INTEGER PRIMARY KEY,
                collection TEXT NOT NULL,
                id TEXT NOT NULL,
                version INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                state INTEGER NOT NULL,
                prior_kind INTEGER NOT NULL,
                prior_version INTEGER NOT NULL,
                prior_hash BLOB NOT NULL,
                prior_payload BLOB,
                checksum INTEGER NOT NULL,
                store TEXT,
                reason TEXT,
                requested_at INTEGER,
                compensation_lsn INTEGER,
                resolved_version INTEGER,
                resolved_at INTEGER);
            CREATE INDEX IF NOT EXISTS compensations_key ON compensations (collection, id, version);
            CREATE INDEX IF NOT EXISTS compensations_requested ON compensations (lsn) WHERE state = 1;
            CREATE INDEX IF NOT EXISTS compensations_resolved ON compensations (resolved_at) WHERE state >= 2;
            """, transaction);

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, IReadOnlyList<EntityChange?> priors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(priors);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        CheckPriors(changes.Count, priors.Count);
        EnsureInitialized();
        var rows = Prepare(changes, withPayload: true);
        var prepared = PreparePriors(priors);
        var range = await _database.WriteAsync((c, t) =>
        {
            var appended = Insert(c, t, rows, state);
            InsertCompensations(c, t, appended, changes, prepared);
            return appended;
        }, cancellationToken).ConfigureAwait(false);
        Remember(range, changes, state);
        return range;
    }

    /// <inheritdoc />
    public ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, IReadOnlyList<bool> compensable, LogCheckpoint? checkpoint, Func<EntityChange, HlcTimestamp, EntityChange> restamp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(compensable);
        ArgumentNullException.ThrowIfNull(restamp);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Length);
        CheckPriors(changes.Length, compensable.Count);
        var priors = new EntityChange?[changes.Length];
        return AppendAndApplyCoreAsync(
            changes,
            checkpoint,
            (c, t) =>
            {
                // The prior states are read in the write's own transaction (the single writer runs nothing in between),
                // so each is exactly the state this write replaces.
                for (var i = 0; i < changes.Length; i++)
                {
                    priors[i] = compensable[i] ? ReadHeld(c, t, changes[i].Key) ?? EntityChange.Delete(changes[i].Key, HlcTimestamp.Zero) : null;
                }

                Documents.ApplyLocalWithin(c, t, changes, change => restamp(change, ReadHeld(c, t, change.Key)?.Version ?? HlcTimestamp.Zero));
            },
            (c, t, appended) => InsertCompensations(c, t, appended, changes, PreparePriors(priors)),
            cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<CompensationRecord?> RequestCompensationAsync(EntityKey key, HlcTimestamp version, string store, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(store);
        ArgumentNullException.ThrowIfNull(reason);

        // Most rejected changes are not compensable: find out with a read before queueing a write on the single writer.
        if ((await ListCompensationsAsync(new CompensationQuery(1) { Key = key, State = null }, version, cancellationToken).ConfigureAwait(false)) is null)
        {
            return null;
        }

        return await _database.WriteAsync((c, t) =>
        {
            using var update = c.CreateCommand();
            update.Transaction = t;
            update.CommandText = """
                UPDATE compensations SET state = 1, store = $s, reason = $r, requested_at = $at
                WHERE collection = $c AND id = $id AND version = $v AND state = 0
                """;
            update.Parameters.AddWithValue("$s", store);
            update.Parameters.AddWithValue("$r", reason);
            update.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
            update.Parameters.AddWithValue("$c", key.Collection);
            update.Parameters.AddWithValue("$id", key.Id);
            update.Parameters.AddWithValue("$v", version.Value);
            update.ExecuteNonQuery();

            using var read = c.CreateCommand();
            read.Transaction = t;
            read.CommandText = $"SELECT {CompensationColumns} FROM compensations WHERE collection = $c AND id = $id AND version = $v ORDER BY lsn DESC LIMIT 1";
            read.Parameters.AddWithValue("$c", key.Collection);
            read.Parameters.AddWithValue("$id", key.Id);
            read.Parameters.AddWithValue("$v", version.Value);
            using var reader = read.ExecuteReader();
            return reader.Read() ? ReadCompensation(reader) : null;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<CompensationRecord>> ListCompensationsAsync(CompensationQuery query, CancellationToken cancellationToken) =>
        (await ListCompensationsAsync(query, null, cancellationToken).ConfigureAwait(false)) ?? [];

    /// <inheritdoc />
    public async ValueTask<CompensationRecord?> ResolveCompensationAsync(long lsn, CompensationState state, EntityChange? compensating, HlcTimestamp resolvedVersion, DateTimeOffset at, CancellationToken cancellationToken)
    {
        CheckResolution(state, compensating);
        EnsureInitialized();
        var rows = compensating is null ? null : Prepare([compensating], withPayload: true);
        var (record, appended) = await _database.WriteAsync<(CompensationRecord?, LsnRange?)>((c, t) =>
        {
            var current = ReadCompensation(c, t, lsn);
            if (current is null || !(current.State == CompensationState.Requested || (state == CompensationState.Failed && current.State == CompensationState.Compensated)))
            {
                return (null, null);
            }

            LsnRange? written = rows is null ? null : Insert(c, t, rows, LogEntryState.Pending);
            var resolved = current with { State = state, CompensationLsn = written?.First ?? current.CompensationLsn, ResolvedVersion = resolvedVersion, ResolvedAt = at };
            UpdateResolution(c, t, resolved);
            return (resolved, written);
        }, cancellationToken).ConfigureAwait(false);
        if (appended is { } range)
        {
            Remember(range, [compensating!], LogEntryState.Pending);
        }

        return record;
    }

    /// <inheritdoc />
    public async ValueTask<CompensationOutcome> CompensateAsync(long lsn, Func<CompensationRecord, HlcTimestamp, EntityChange> compensating, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(compensating);
        EnsureInitialized();
        try
        {
            var outcome = await _database.WriteAsync((c, t) =>
            {
                var current = ReadCompensation(c, t, lsn);
                if (current is null || current.State != CompensationState.Requested)
                {
                    return new CompensationOutcome(current, null, false);
                }

                // Decided against the source in the same transaction that writes the compensating change.
                var held = ReadHeld(c, t, current.Key);
                if (held is null || held.Version != current.Version)
                {
                    var superseded = current with { State = CompensationState.Superseded, ResolvedVersion = held?.Version ?? HlcTimestamp.Zero, ResolvedAt = at };
                    UpdateResolution(c, t, superseded);
                    return new CompensationOutcome(superseded, null, true);
                }

                var change = compensating(current, held.Version);
                Documents.ApplyWithin(c, t, [change]);
                var range = Insert(c, t, Prepare([change], withPayload: false), LogEntryState.Committed);
                var compensated = current with { State = CompensationState.Compensated, CompensationLsn = range.First, ResolvedVersion = change.Version, ResolvedAt = at };
                UpdateResolution(c, t, compensated);
                return new CompensationOutcome(compensated, new LogRecord(range.First, change, LogEntryState.Committed), true);
            }, cancellationToken).ConfigureAwait(false);
            if (outcome.Written is { } written)
            {
                Remember(new LsnRange(written.Lsn, written.Lsn), [written.Change], LogEntryState.Committed);
            }

            return outcome;
        }
        catch (SqliteException ex)
        {
            throw new SyncStoreException($"SQLite source {SafeText.Quote(Documents.Name)} rejected the compensating change of the write at LSN {lsn}: {SafeText.Quote(ex.Message, 1000)}", SqliteDatabase.IsTransient(ex), Documents.Name, null, "compensate", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<int> RemoveCompensationsAsync(long armedThrough, DateTimeOffset resolvedBefore, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        return await _database.WriteAsync((c, t) =>
        {
            using var command = c.CreateCommand();
            command.Transaction = t;
            command.CommandText = """
                DELETE FROM compensations WHERE lsn IN (
                    SELECT lsn FROM compensations WHERE state = 0 AND lsn <= $through
                    UNION ALL
                    SELECT lsn FROM compensations WHERE state >= 2 AND resolved_at < $before
                    LIMIT $n)
                """;
            command.Parameters.AddWithValue("$through", armedThrough);
            command.Parameters.AddWithValue("$before", resolvedBefore.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$n", maxCount);
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    internal static void CheckPriors(int changes, int priors)
    {
        if (priors != changes)
        {
            throw new ArgumentException($"{changes} changes but {priors} compensation flags or prior states; pass one per change.", nameof(priors));
        }
    }

    internal static void CheckResolution(CompensationState state, EntityChange? compensating)
    {
        if (state is not (CompensationState.Compensated or CompensationState.Superseded or CompensationState.Failed) || (state == CompensationState.Compensated) != (compensating is not null))
        {
            throw new ArgumentException($"A compensation resolves as Compensated with a compensating change, or as Superseded or Failed without one; got {state} {(compensating is null ? "without" : "with")} one.", nameof(state));
        }
    }

    /// <summary>Lists records; with <paramref name="version"/>, only those of the query's key at that version (null when there are none).</summary>
    private async ValueTask<IReadOnlyList<CompensationRecord>?> ListCompensationsAsync(CompensationQuery query, HlcTimestamp? version, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(query.MaxCount, 1);
        await using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        var sql = new StringBuilder($"SELECT {CompensationColumns} FROM compensations WHERE lsn > $after");
        command.Parameters.AddWithValue("$after", query.AfterLsn);
        if (version is { } v)
        {
            sql.Append(" AND version = $v");
            command.Parameters.AddWithValue("$v", v.Value);
        }
        else if (query.State is { } state)
        {
            sql.Append(" AND state = $state");
            command.Parameters.AddWithValue("$state", (int)state);
        }
        else
        {
            sql.Append(" AND state <> 0");
        }

        if (query.Lsns is { } range)
        {
            sql.Append(" AND lsn BETWEEN $first AND $last");
            command.Parameters.AddWithValue("$first", range.First);
            command.Parameters.AddWithValue("$last", range.Last);
        }

        if (query.Key is { IsDefault: false } key)
        {
            sql.Append(" AND collection = $c AND id = $id");
            command.Parameters.AddWithValue("$c", key.Collection);
            command.Parameters.AddWithValue("$id", key.Id);
        }
        else if (query.Collection is { } collection)
        {
            sql.Append(" AND collection = $c");
            command.Parameters.AddWithValue("$c", collection);
        }

        sql.Append(query.NewestFirst ? " ORDER BY lsn DESC LIMIT $n" : " ORDER BY lsn LIMIT $n");
        command.Parameters.AddWithValue("$n", query.MaxCount);
        command.CommandText = sql.ToString();
        var result = new List<CompensationRecord>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (reader.Read())
        {
            result.Add(ReadCompensation(reader));
        }

        return version is not null && result.Count == 0 ? null : result;
    }

    /// <summary>What <c>documents</c> holds for a key (a delete for a tombstone), or null when it holds no row.</summary>
    private static EntityChange? ReadHeld(SqliteConnection connection, SqliteTransaction transaction, EntityKey key)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT version, hash, deleted, document, vector, edges FROM documents WHERE collection = $c AND id = $id";
        command.Parameters.AddWithValue("$c", key.Collection);
        command.Parameters.AddWithValue("$id", key.Id);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        var version = new HlcTimestamp(reader.GetInt64(0));
        if (reader.GetInt64(2) != 0)
        {
            return EntityChange.Delete(key, version);
        }

        var entity = new SyncEntity(
            key,
            reader.IsDBNull(3) ? [] : (byte[])reader[3],
            SqliteCodec.BlobToVector(reader.IsDBNull(4) ? null : (byte[])reader[4]),
            SqliteCodec.BlobToEdges(reader.IsDBNull(5) ? null : (byte[])reader[5]));
        return EntityChange.Upsert(entity, version, SqliteCodec.BlobToHash((byte[])reader[1]));
    }

    private static PreparedPrior?[] PreparePriors(IReadOnlyList<EntityChange?> priors)
    {
        var prepared = new PreparedPrior?[priors.Count];
        for (var i = 0; i < prepared.Length; i++)
        {
            if (priors[i] is { } prior)
            {
                prepared[i] = new PreparedPrior(prior, SqliteCodec.HashToBlob(prior.ContentHash), prior.Entity is null ? null : EntityEncoding.EncodeToArray(prior.Entity));
            }
        }

        return prepared;
    }

    private static void InsertCompensations(SqliteConnection connection, SqliteTransaction transaction, LsnRange range, IReadOnlyList<EntityChange> changes, PreparedPrior?[] priors)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO compensations (lsn, collection, id, version, kind, state, prior_kind, prior_version, prior_hash, prior_payload, checksum)
            VALUES ($lsn, $c, $id, $v, $k, 0, $pk, $pv, $ph, $pp, $cs)
            """;
        var lsn = command.Parameters.Add("$lsn", SqliteType.Integer);
        var c = command.Parameters.Add("$c", SqliteType.Text);
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var v = command.Parameters.Add("$v", SqliteType.Integer);
        var k = command.Parameters.Add("$k", SqliteType.Integer);
        var pk = command.Parameters.Add("$pk", SqliteType.Integer);
        var pv = command.Parameters.Add("$pv", SqliteType.Integer);
        var ph = command.Parameters.Add("$ph", SqliteType.Blob);
        var pp = command.Parameters.Add("$pp", SqliteType.Blob);
        var cs = command.Parameters.Add("$cs", SqliteType.Integer);
        for (var i = 0; i < changes.Count; i++)
        {
            if (priors[i] is not { } prior)
            {
                continue;
            }

            var change = changes[i];
            var number = range.First + i;
            lsn.Value = number;
            c.Value = change.Key.Collection;
            id.Value = change.Key.Id;
            v.Value = change.Version.Value;
            k.Value = (int)change.Kind;
            pk.Value = (int)prior.Change.Kind;
            pv.Value = prior.Change.Version.Value;
            ph.Value = prior.Hash;
            pp.Value = (object?)prior.Payload ?? DBNull.Value;
            cs.Value = unchecked((long)LogRecordChecksum.ComputeCompensation(number, change.Kind, change.Version.Value, prior.Change.Kind, prior.Change.Version.Value, prior.Hash, change.Key.Collection, change.Key.Id, prior.Payload));
            command.ExecuteNonQuery();
        }
    }

    private static CompensationRecord? ReadCompensation(SqliteConnection connection, SqliteTransaction transaction, long lsn)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT {CompensationColumns} FROM compensations WHERE lsn = $lsn";
        command.Parameters.AddWithValue("$lsn", lsn);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadCompensation(reader) : null;
    }

    private static void UpdateResolution(SqliteConnection connection, SqliteTransaction transaction, CompensationRecord record)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE compensations SET state = $s, compensation_lsn = $cl, resolved_version = $rv, resolved_at = $at WHERE lsn = $lsn";
        command.Parameters.AddWithValue("$s", (int)record.State);
        command.Parameters.AddWithValue("$cl", record.CompensationLsn is { } lsn ? lsn : DBNull.Value);
        command.Parameters.AddWithValue("$rv", record.ResolvedVersion is { } version ? version.Value : DBNull.Value);
        command.Parameters.AddWithValue("$at", record.ResolvedAt is { } at ? at.ToUnixTimeMilliseconds() : DBNull.Value);
        command.Parameters.AddWithValue("$lsn", record.Lsn);
        command.ExecuteNonQuery();
    }

    /// <summary>Decodes and checks one row of <see cref="CompensationColumns"/>.</summary>
    private static CompensationRecord ReadCompensation(SqliteDataReader reader)
    {
        var lsn = reader.GetInt64(0);
        try
        {
            var collection = reader.GetString(1);
            var id = reader.GetString(2);
            var version = reader.GetInt64(3);
            var kind = (ChangeKind)reader.GetInt32(4);
            var priorKind = (ChangeKind)reader.GetInt32(6);
            var priorVersion = reader.GetInt64(7);
            var priorHash = (byte[])reader[8];
            var payload = reader.IsDBNull(9) ? null : (byte[])reader[9];
            var stored = unchecked((ulong)reader.GetInt64(10));
            var prior = LogRecordChecksum.VerifyCompensationPrior(lsn, collection, id, version, kind, priorKind, priorVersion, priorHash, SqliteCodec.BlobToHash(priorHash), payload, stored);
            return new CompensationRecord(
                lsn,
                prior.Key,
                new HlcTimestamp(version),
                kind,
                prior,
                (CompensationState)reader.GetInt32(5),
                reader.IsDBNull(11) ? null : reader.GetString(11),
                reader.IsDBNull(12) ? null : reader.GetString(12),
                reader.IsDBNull(13) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(13)),
                reader.IsDBNull(14) ? null : reader.GetInt64(14),
                reader.IsDBNull(15) ? null : new HlcTimestamp(reader.GetInt64(15)),
                reader.IsDBNull(16) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(16)));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Compensation record of the write at LSN {lsn} cannot be decoded: {SafeText.Quote(ex.Message, 1000)}", lsn, "compensation", ex);
        }
    }

    private sealed record PreparedPrior(EntityChange Change, byte[] Hash, byte[]? Payload);
}
