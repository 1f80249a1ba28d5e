using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>
/// Compensation records (<see cref="ISourceCoupledCompensationLog"/>) in table <c>compensations</c>. With the coupled
/// document store, a compensable write reads and locks (<c>FOR UPDATE</c>) the rows it replaces in its own transaction
/// and stores their prior state with its entries; a compensation locks its record and the key's row, decides against
/// what the row holds and writes the compensating change in the same transaction, so processes sharing the log can
/// neither both compensate a write nor slip a write in between.
/// </summary>
public sealed partial class PostgresChangeLog : ISourceCoupledCompensationLog
{
    private const string CompensationColumns =
        "lsn, collection, id, version, kind, state, prior_kind, prior_version, prior_hash, prior_payload, checksum, store, reason, requested_at, compensation_lsn, resolved_version, resolved_at";

    private async Task CreateCompensationTablesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        await ExecuteAsync(connection, transaction, $"""
            CREATE TABLE IF NOT EXISTS {_s}.compensations (
                lsn bigint PRIMARY KEY,
                collection text NOT NULL,
                id text NOT NULL,
                version bigint NOT NULL,
                kind smallint NOT NULL,
                state smallint NOT NULL,
                prior_kind smallint NOT NULL,
                prior_version bigint NOT NULL,
                prior_hash bytea NOT NULL,
                prior_payload bytea,
                checksum bigint NOT NULL,
                store text,
                reason text,
                requested_at timestamptz,
                compensation_lsn bigint,
                resolved_version bigint,
                resolved_at timestamptz);
            CREATE INDEX IF NOT EXISTS compensations_key ON {_s}.compensations (collection, id, version);
            CREATE INDEX IF NOT EXISTS compensations_requested ON {_s}.compensations (lsn) WHERE state = 1;
            CREATE INDEX IF NOT EXISTS compensations_resolved ON {_s}.compensations (resolved_at) WHERE state >= 2;
            """, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, IReadOnlyList<EntityChange?> priors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(priors);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        CheckCount(changes.Count, priors.Count);
        EnsureInitialized();
        var rows = Prepare(changes);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var range = await InsertAsync(connection, transaction, rows, state, cancellationToken).ConfigureAwait(false);
            await InsertCompensationsAsync(connection, transaction, range, changes, priors, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return range;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("append", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, IReadOnlyList<bool> compensable, LogCheckpoint? checkpoint, Func<EntityChange, HlcTimestamp, EntityChange> restamp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(compensable);
        ArgumentNullException.ThrowIfNull(restamp);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Length);
        CheckCount(changes.Length, compensable.Count);
        EnsureInitialized();
        var documents = _documents ?? throw new InvalidOperationException("This change log has no PostgreSQL document store to commit with; append pending entries and apply the source yourself.");
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

            // The rows this write replaces, locked until it commits: each prior state is exactly what the write replaces,
            // and a change older than what a row holds (written by a compensation or another process after this change
            // took its version) is restamped on top instead of being dropped by the version guard.
            var keys = new EntityKey[changes.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = changes[i].Key;
            }

            var held = await documents.ReadHeldForUpdateAsync(connection, transaction, keys, cancellationToken).ConfigureAwait(false);
            var priors = new EntityChange?[changes.Length];
            for (var i = 0; i < changes.Length; i++)
            {
                var stored = held.GetValueOrDefault(changes[i].Key);
                if (compensable[i])
                {
                    priors[i] = stored ?? EntityChange.Delete(changes[i].Key, HlcTimestamp.Zero);
                }

                if (stored is not null && stored.Version >= changes[i].Version)
                {
                    changes[i] = restamp(changes[i], stored.Version);
                }
            }

            await documents.ApplyWithinAsync(connection, transaction, changes, cancellationToken).ConfigureAwait(false);
            var range = await InsertAsync(connection, transaction, Prepare(changes), LogEntryState.Committed, cancellationToken).ConfigureAwait(false);
            if (checkpoint is { } saved)
            {
                await WriteCheckpointAsync(connection, transaction, saved.Name, saved.Value, cancellationToken).ConfigureAwait(false);
            }

            await InsertCompensationsAsync(connection, transaction, range, changes, priors, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return range;
        }
        catch (NpgsqlException ex)
        {
            throw new SyncStoreException($"PostgreSQL source {SafeText.Quote(documents.Name)} rejected the write: {SafeText.Quote(ex.Message, 1000)}", PostgresSql.IsTransient(ex), documents.Name, changes[0].Key, "apply", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<CompensationRecord?> RequestCompensationAsync(EntityKey key, HlcTimestamp version, string store, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(store);
        ArgumentNullException.ThrowIfNull(reason);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (var update = new NpgsqlCommand($"""
                UPDATE {_s}.compensations SET state = 1, store = $4, reason = $5, requested_at = $6
                WHERE collection = $1 AND id = $2 AND version = $3 AND state = 0
                """, connection, transaction))
            {
                update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Collection });
                update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Id });
                update.Parameters.Add(new NpgsqlParameter<long> { TypedValue = version.Value });
                update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store });
                update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = reason });
                update.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = at.ToUniversalTime() });
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using var read = new NpgsqlCommand($"SELECT {CompensationColumns} FROM {_s}.compensations WHERE collection = $1 AND id = $2 AND version = $3 ORDER BY lsn DESC LIMIT 1", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Collection });
            read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Id });
            read.Parameters.Add(new NpgsqlParameter<long> { TypedValue = version.Value });
            var records = await ReadCompensationsAsync(read, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return records.Count == 0 ? null : records[0];
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("record a compensation request", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<CompensationRecord>> ListCompensationsAsync(CompensationQuery query, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(query.MaxCount, 1);
        var sql = new StringBuilder($"SELECT {CompensationColumns} FROM {_s}.compensations WHERE lsn > $1");
        var parameters = new List<NpgsqlParameter> { new NpgsqlParameter<long> { TypedValue = query.AfterLsn } };
        string Next(NpgsqlParameter parameter)
        {
            parameters.Add(parameter);
            return "$" + parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        sql.Append(query.State is { } state ? $" AND state = {Next(new NpgsqlParameter<short> { TypedValue = (short)state })}" : " AND state <> 0");
        if (query.Lsns is { } range)
        {
            sql.Append($" AND lsn BETWEEN {Next(new NpgsqlParameter<long> { TypedValue = range.First })} AND {Next(new NpgsqlParameter<long> { TypedValue = range.Last })}");
        }

        if (query.Key is { IsDefault: false } key)
        {
            sql.Append($" AND collection = {Next(new NpgsqlParameter<string> { TypedValue = key.Collection })} AND id = {Next(new NpgsqlParameter<string> { TypedValue = key.Id })}");
        }
        else if (query.Collection is { } collection)
        {
            sql.Append($" AND collection = {Next(new NpgsqlParameter<string> { TypedValue = collection })}");
        }

        sql.Append(query.NewestFirst ? " ORDER BY lsn DESC" : " ORDER BY lsn");
        sql.Append($" LIMIT {Next(new NpgsqlParameter<int> { TypedValue = query.MaxCount })}");
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(sql.ToString(), connection);
            command.Parameters.AddRange(parameters.ToArray());
            return await ReadCompensationsAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("list compensations", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<CompensationRecord?> ResolveCompensationAsync(long lsn, CompensationState state, EntityChange? compensating, HlcTimestamp resolvedVersion, DateTimeOffset at, CancellationToken cancellationToken)
    {
        if (state is not (CompensationState.Compensated or CompensationState.Superseded or CompensationState.Failed) || (state == CompensationState.Compensated) != (compensating is not null))
        {
            throw new ArgumentException($"A compensation resolves as Compensated with a compensating change, or as Superseded or Failed without one; got {state} {(compensating is null ? "without" : "with")} one.", nameof(state));
        }

        EnsureInitialized();
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var current = await ReadCompensationForUpdateAsync(connection, transaction, lsn, cancellationToken).ConfigureAwait(false);
            if (current is null || !(current.State == CompensationState.Requested || (state == CompensationState.Failed && current.State == CompensationState.Compensated)))
            {
                return null;
            }

            var written = compensating is null ? current.CompensationLsn : (await InsertAsync(connection, transaction, Prepare([compensating]), LogEntryState.Pending, cancellationToken).ConfigureAwait(false)).First;
            var resolved = current with { State = state, CompensationLsn = written, ResolvedVersion = resolvedVersion, ResolvedAt = at };
            await UpdateResolutionAsync(connection, transaction, resolved, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return resolved;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("resolve a compensation", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<CompensationOutcome> CompensateAsync(long lsn, Func<CompensationRecord, HlcTimestamp, EntityChange> compensating, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(compensating);
        EnsureInitialized();
        var documents = _documents ?? throw new InvalidOperationException("This change log has no PostgreSQL document store to commit with; compensations are resolved through ResolveCompensationAsync.");
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

            // The record's lock serialises processes sharing the log; the row's lock keeps writes out until this commits.
            var current = await ReadCompensationForUpdateAsync(connection, transaction, lsn, cancellationToken).ConfigureAwait(false);
            if (current is null || current.State != CompensationState.Requested)
            {
                return new CompensationOutcome(current, null, false);
            }

            var held = (await documents.ReadHeldForUpdateAsync(connection, transaction, [current.Key], cancellationToken).ConfigureAwait(false)).GetValueOrDefault(current.Key);
            if (held is null || held.Version != current.Version)
            {
                var superseded = current with { State = CompensationState.Superseded, ResolvedVersion = held?.Version ?? HlcTimestamp.Zero, ResolvedAt = at };
                await UpdateResolutionAsync(connection, transaction, superseded, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return new CompensationOutcome(superseded, null, true);
            }

            var change = compensating(current, held.Version);
            await documents.ApplyWithinAsync(connection, transaction, [change], cancellationToken).ConfigureAwait(false);
            var range = await InsertAsync(connection, transaction, Prepare([change]), LogEntryState.Committed, cancellationToken).ConfigureAwait(false);
            var compensated = current with { State = CompensationState.Compensated, CompensationLsn = range.First, ResolvedVersion = change.Version, ResolvedAt = at };
            await UpdateResolutionAsync(connection, transaction, compensated, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return new CompensationOutcome(compensated, new LogRecord(range.First, change, LogEntryState.Committed), true);
        }
        catch (NpgsqlException ex)
        {
            throw new SyncStoreException($"PostgreSQL source {SafeText.Quote(documents.Name)} failed to compensate the write at LSN {lsn}: {SafeText.Quote(ex.Message, 1000)}", PostgresSql.IsTransient(ex), documents.Name, null, "compensate", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<int> RemoveCompensationsAsync(long armedThrough, DateTimeOffset resolvedBefore, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"""
                DELETE FROM {_s}.compensations WHERE lsn IN (
                    (SELECT lsn FROM {_s}.compensations WHERE state = 0 AND lsn <= $1 LIMIT $3)
                    UNION ALL
                    (SELECT lsn FROM {_s}.compensations WHERE state >= 2 AND resolved_at < $2 LIMIT $3)
                    LIMIT $3)
                """, connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = armedThrough });
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = resolvedBefore.ToUniversalTime() });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("remove compensations", ex);
        }
    }

    private static void CheckCount(int changes, int flags)
    {
        if (flags != changes)
        {
            throw new ArgumentException($"{changes} changes but {flags} compensation flags or prior states; pass one per change.", nameof(flags));
        }
    }

    private async Task InsertCompensationsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, LsnRange range, IReadOnlyList<EntityChange> changes, IReadOnlyList<EntityChange?> priors, CancellationToken cancellationToken)
    {
        var lsns = new List<long>();
        var collections = new List<string>();
        var ids = new List<string>();
        var versions = new List<long>();
        var kinds = new List<short>();
        var priorKinds = new List<short>();
        var priorVersions = new List<long>();
        var priorHashes = new List<byte[]>();
        var priorPayloads = new List<byte[]?>();
        var checksums = new List<long>();
        for (var i = 0; i < changes.Count; i++)
        {
            if (priors[i] is not { } prior)
            {
                continue;
            }

            var change = changes[i];
            var lsn = range.First + i;
            var hash = DocumentCodec.HashToBytes(prior.ContentHash);
            var payload = prior.Entity is null ? null : EntityEncoding.EncodeToArray(prior.Entity);
            lsns.Add(lsn);
            collections.Add(change.Key.Collection);
            ids.Add(change.Key.Id);
            versions.Add(change.Version.Value);
            kinds.Add((short)change.Kind);
            priorKinds.Add((short)prior.Kind);
            priorVersions.Add(prior.Version.Value);
            priorHashes.Add(hash);
            priorPayloads.Add(payload);
            checksums.Add(unchecked((long)LogRecordChecksum.ComputeCompensation(lsn, change.Kind, change.Version.Value, prior.Kind, prior.Version.Value, hash, change.Key.Collection, change.Key.Id, payload)));
        }

        if (lsns.Count == 0)
        {
            return;
        }

        await using var insert = new NpgsqlCommand($"""
            INSERT INTO {_s}.compensations (lsn, collection, id, version, kind, state, prior_kind, prior_version, prior_hash, prior_payload, checksum)
            SELECT u.lsn, u.collection, u.id, u.version, u.kind, 0, u.prior_kind, u.prior_version, u.prior_hash, u.prior_payload, u.checksum
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::smallint[], $6::smallint[], $7::bigint[], $8::bytea[], $9::bytea[], $10::bigint[])
                AS u(lsn, collection, id, version, kind, prior_kind, prior_version, prior_hash, prior_payload, checksum)
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. lsns] });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. collections] });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. ids] });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. versions] });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = [.. kinds] });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = [.. priorKinds] });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. priorVersions] });
        insert.Parameters.Add(new NpgsqlParameter { Value = priorHashes.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = priorPayloads.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. checksums] });
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<CompensationRecord?> ReadCompensationForUpdateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long lsn, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT {CompensationColumns} FROM {_s}.compensations WHERE lsn = $1 FOR UPDATE", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lsn });
        var records = await ReadCompensationsAsync(command, cancellationToken).ConfigureAwait(false);
        return records.Count == 0 ? null : records[0];
    }

    private async Task UpdateResolutionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CompensationRecord record, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"UPDATE {_s}.compensations SET state = $2, compensation_lsn = $3, resolved_version = $4, resolved_at = $5 WHERE lsn = $1", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = record.Lsn });
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)record.State });
        command.Parameters.Add(new NpgsqlParameter { Value = record.CompensationLsn is { } lsn ? lsn : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = record.ResolvedVersion is { } version ? version.Value : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = record.ResolvedAt is { } at ? at.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<CompensationRecord>> ReadCompensationsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<CompensationRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(ReadCompensation(reader));
        }

        return result;
    }

    /// <summary>Decodes and checks one row of <see cref="CompensationColumns"/>.</summary>
    private static CompensationRecord ReadCompensation(NpgsqlDataReader reader)
    {
        var lsn = reader.GetInt64(0);
        try
        {
            var collection = reader.GetString(1);
            var id = reader.GetString(2);
            var version = reader.GetInt64(3);
            var kind = (ChangeKind)reader.GetInt16(4);
            var priorKind = (ChangeKind)reader.GetInt16(6);
            var priorVersion = reader.GetInt64(7);
            var priorHash = reader.GetFieldValue<byte[]>(8);
            var payload = reader.IsDBNull(9) ? null : reader.GetFieldValue<byte[]>(9);
            var stored = unchecked((ulong)reader.GetInt64(10));
            var prior = LogRecordChecksum.VerifyCompensationPrior(lsn, collection, id, version, kind, priorKind, priorVersion, priorHash, DocumentCodec.BytesToHash(priorHash), payload, stored);
            return new CompensationRecord(
                lsn,
                prior.Key,
                new HlcTimestamp(version),
                kind,
                prior,
                (CompensationState)reader.GetInt16(5),
                reader.IsDBNull(11) ? null : reader.GetString(11),
                reader.IsDBNull(12) ? null : reader.GetString(12),
                reader.IsDBNull(13) ? null : new DateTimeOffset(reader.GetDateTime(13), TimeSpan.Zero),
                reader.IsDBNull(14) ? null : reader.GetInt64(14),
                reader.IsDBNull(15) ? null : new HlcTimestamp(reader.GetInt64(15)),
                reader.IsDBNull(16) ? null : new DateTimeOffset(reader.GetDateTime(16), TimeSpan.Zero));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Compensation record of the write at LSN {lsn} cannot be decoded: {SafeText.Quote(ex.Message, 1000)}", lsn, "compensation", ex);
        }
    }
}
