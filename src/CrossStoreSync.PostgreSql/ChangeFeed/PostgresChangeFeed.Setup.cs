using CrossStoreSync.Errors;

using System.Text;
using CrossStoreSync.Sync;
using Npgsql;
using Npgsql.Replication;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

public sealed partial class PostgresChangeFeed
{
    /// <summary>
    /// Accepts that the slot lost changes (after <see cref="PostgresReplicationSlotLostException"/>): drops the broken
    /// slot if it still exists, creates a fresh one so no change from now on is missed, and saves a new position.
    /// Call it with the feed stopped, then bring the stores up to date as docs/postgres-cdc.md describes (with
    /// <see cref="PostgresChangeFeedOptions.CopyExistingRows"/> the next start copies the tables' current rows);
    /// idempotent.
    /// </summary>
    /// <returns>The LSN the new slot starts at.</returns>
    /// <exception cref="NpgsqlException">The server failed (for example the slot is in use by a running feed).</exception>
    public async Task<NpgsqlLogSequenceNumber> AcknowledgeSlotLossAsync(CancellationToken cancellationToken = default)
    {
        var saved = await _writer.GetPositionAsync(Name, cancellationToken).ConfigureAwait(false);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        if (await ReadSlotAsync(connection, cancellationToken).ConfigureAwait(false) is not null)
        {
            await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", connection) { Parameters = { new() { Value = _options.SlotName } } };
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        PostgresChangeFeedLog.SlotLossAcknowledged(_logger, Name, _options.SlotName, saved ?? "(none)");
        var position = await CreateSlotAsync(exportSnapshot: false, cancellationToken).ConfigureAwait(false);
        return new NpgsqlLogSequenceNumber(position.Confirmable);
    }

    /// <summary>Checks the tables, ensures the publication and the slot, and returns the position to resume from.</summary>
    private async Task<PostgresFeedPosition> PrepareAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await CheckTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        await EnsurePublicationAsync(connection, cancellationToken).ConfigureAwait(false);

        var savedText = await _writer.GetPositionAsync(Name, cancellationToken).ConfigureAwait(false);
        PostgresFeedPosition? saved;
        try
        {
            saved = savedText is null ? null : PostgresFeedPosition.Parse(savedText);
        }
        catch (FormatException ex)
        {
            throw new PostgresChangeFeedException(ex.Message + " It was not written by this feed version; if the change log was shared with another feed of the same name, rename one.", Name, "start", ex);
        }

        PostgresFeedPosition start;
        var slot = await ReadSlotAsync(connection, cancellationToken).ConfigureAwait(false);
        if (slot is null)
        {
            if (saved is not null)
            {
                throw SlotLost(PostgresSlotLossReason.Missing, savedText, $"The replication slot {SafeText.Quote(_options.SlotName)} does not exist, but the change feed {Name} saved position {savedText} from it: the slot was dropped while the feed was not running, so changes made since may be missing from every store.");
            }

            start = await CreateSlotAsync(_options.CopyExistingRows, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var (plugin, database, confirmed, walStatus, currentDatabase) = slot.Value;
            if (plugin != "pgoutput" || database != currentDatabase)
            {
                throw new PostgresChangeFeedException($"The replication slot {SafeText.Quote(_options.SlotName)} uses plugin {SafeText.Quote(plugin)} in database {SafeText.Quote(database)}; the change feed {Name} needs a pgoutput slot of database {SafeText.Quote(currentDatabase)}. Choose another PostgresChangeFeedOptions.SlotName.", Name, "start");
            }

            if (walStatus == "lost")
            {
                throw SlotLost(PostgresSlotLossReason.WalRemoved, savedText, $"The replication slot {SafeText.Quote(_options.SlotName)} lost WAL it still needed (wal_status = 'lost', see max_slot_wal_keep_size): changes made while the feed {Name} was behind are gone from the server and may be missing from every store.");
            }

            if (saved is null)
            {
                start = new PostgresFeedPosition(0, 0, confirmed);
                await _writer.SavePositionAsync(new FeedPosition(Name, start.ToString()), cancellationToken).ConfigureAwait(false);
                PostgresChangeFeedLog.SlotAdopted(_logger, Name, _options.SlotName, new NpgsqlLogSequenceNumber(confirmed).ToString());
            }
            else if (confirmed > saved.Value.Confirmable)
            {
                throw SlotLost(PostgresSlotLossReason.AdvancedElsewhere, savedText, $"The replication slot {SafeText.Quote(_options.SlotName)} is confirmed up to {new NpgsqlLogSequenceNumber(confirmed)}, beyond {new NpgsqlLogSequenceNumber(saved.Value.Confirmable)}, the most the change feed {Name} ever confirmed: it was recreated, advanced by hand or consumed by another client, so changes in between may be missing from every store.");
            }
            else
            {
                start = saved.Value;
            }
        }

        PostgresChangeFeedLog.Started(_logger, Name, _options.SlotName, _options.PublicationName, start.ToString());
        _handled.Advance(start.Confirmable);
        _confirmed.Advance(start.Confirmable);
        return start;
    }

    private PostgresReplicationSlotLostException SlotLost(PostgresSlotLossReason reason, string? saved, string what) => new(
        what + " The feed does not recreate the slot on its own. Recovery: stop the feed, call PostgresChangeFeed.AcknowledgeSlotLossAsync (new slot), bring the source of truth up to date with the tables, backfill each replica with IMigrationManager.RunAsync, then run IConsistencyChecker.CheckAsync on every collection (docs/postgres-cdc.md).",
        Name,
        _options.SlotName,
        reason,
        saved);

    private async Task<(string Plugin, string Database, ulong Confirmed, string? WalStatus, string CurrentDatabase)?> ReadSlotAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT plugin, database, confirmed_flush_lsn, wal_status, current_database() FROM pg_replication_slots WHERE slot_name = $1",
            connection)
        { Parameters = { new() { Value = _options.SlotName } } };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var confirmed = reader.IsDBNull(2) ? 0UL : (ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(2);
        return (reader.IsDBNull(0) ? string.Empty : reader.GetString(0), reader.IsDBNull(1) ? string.Empty : reader.GetString(1), confirmed, reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetString(4));
    }

    /// <summary>
    /// Creates the slot on a replication connection. With <paramref name="exportSnapshot"/> the connection stays open
    /// (<see cref="_exported"/>) so the copy of existing rows reads exactly the state the slot starts after.
    /// </summary>
    private async Task<PostgresFeedPosition> CreateSlotAsync(bool exportSnapshot, CancellationToken cancellationToken)
    {
        var replication = new LogicalReplicationConnection(_options.ConnectionString);
        NpgsqlLogSequenceNumber lsn;
        try
        {
            await replication.Open(cancellationToken).ConfigureAwait(false);
            var slot = await replication.CreatePgOutputReplicationSlot(
                _options.SlotName,
                slotSnapshotInitMode: exportSnapshot ? LogicalSlotSnapshotInitMode.Export : LogicalSlotSnapshotInitMode.NoExport,
                cancellationToken: cancellationToken).ConfigureAwait(false);
            lsn = slot.ConsistentPoint;
            if (exportSnapshot && slot.SnapshotName is { } snapshot)
            {
                await DisposeExportedAsync().ConfigureAwait(false);
                _exported = (replication, snapshot);
                replication = null;
            }
        }
        finally
        {
            if (replication is not null)
            {
                await replication.DisposeAsync().ConfigureAwait(false);
            }
        }

        var start = new PostgresFeedPosition(0, 0, (ulong)lsn, _options.CopyExistingRows);
        await _writer.SavePositionAsync(new FeedPosition(Name, start.ToString()), cancellationToken).ConfigureAwait(false);
        PostgresChangeFeedLog.SlotCreated(_logger, Name, _options.SlotName, lsn.ToString());
        return start;
    }

    private async Task CheckTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var schemas = new string[_options.Tables.Count];
        var names = new string[_options.Tables.Count];
        for (var i = 0; i < schemas.Length; i++)
        {
            schemas[i] = _options.Tables[i].Schema;
            names[i] = _options.Tables[i].Name;
        }

        await using var command = new NpgsqlCommand(
            """
            SELECT t.s, t.r, c.relreplident,
                   (SELECT array_agg(a.attname::text ORDER BY k.ord)
                    FROM (SELECT i.indkey FROM pg_index i
                          WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)
                          ORDER BY (c.relreplident = 'i' AND i.indisreplident) DESC, i.indisprimary DESC LIMIT 1) x
                    CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
            FROM unnest($1::text[], $2::text[]) AS t(s, r)
            LEFT JOIN pg_namespace n ON n.nspname = t.s
            LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.r AND c.relkind IN ('r', 'p')
            """,
            connection)
        { Parameters = { new() { Value = schemas }, new() { Value = names } } };
        var keys = new Dictionary<(string Schema, string Name), string[]>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var table = reader.GetString(0) + "." + reader.GetString(1);
            if (reader.IsDBNull(2))
            {
                throw new PostgresChangeFeedException($"The followed table {table} does not exist in the database of PostgresChangeFeedOptions.ConnectionString (names are case-sensitive, unquoted).", Name, "start");
            }

            var identity = reader.GetChar(2);
            var key = reader.IsDBNull(3) ? [] : reader.GetFieldValue<string[]>(3);
            if (identity == 'n' || identity == 'd' && key.Length == 0)
            {
                throw new PostgresChangeFeedException($"The followed table {table} has no replica identity (REPLICA IDENTITY {(identity == 'n' ? "NOTHING" : "DEFAULT without a primary key")}), so its deletes carry no key; add a primary key or set REPLICA IDENTITY FULL.", Name, "start");
            }

            keys[(reader.GetString(0), reader.GetString(1))] = key;
        }

        // With REPLICA IDENTITY FULL every column is marked as key in the stream; the primary key names the row.
        Volatile.Write(ref _keyColumns, keys);
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var published = new HashSet<string>(StringComparer.Ordinal);
        bool exists;
        await using (var command = new NpgsqlCommand(
            "SELECT p.pubname IS NOT NULL, t.schemaname, t.tablename FROM (SELECT $1::name AS n) q LEFT JOIN pg_publication p ON p.pubname = q.n LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname",
            connection)
        { Parameters = { new() { Value = _options.PublicationName } } })
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            exists = false;
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                exists = reader.GetBoolean(0);
                if (!reader.IsDBNull(1))
                {
                    published.Add(reader.GetString(1) + "." + reader.GetString(2));
                }
            }
        }

        var missing = new StringBuilder();
        var missingNames = new List<string>();
        foreach (var mapping in _options.Tables)
        {
            if (!published.Contains(mapping.Table))
            {
                missing.Append(missing.Length > 0 ? ", " : string.Empty).Append(mapping.QuotedTable);
                missingNames.Add(mapping.Table);
            }
        }

        if (missing.Length == 0)
        {
            return;
        }

        // Identifiers were validated against a strict pattern and are quoted; DDL takes no parameters.
        var publication = PostgresTableMapping.Quote(_options.PublicationName);
        var sql = exists
            ? $"ALTER PUBLICATION {publication} ADD TABLE {missing}"
            : $"CREATE PUBLICATION {publication} FOR TABLE {missing} WITH (publish = 'insert, update, delete')";
        await using (var ddl = new NpgsqlCommand(sql, connection))
        {
            await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (exists)
        {
            PostgresChangeFeedLog.PublicationExtended(_logger, Name, _options.PublicationName, string.Join(", ", missingNames));
        }
        else
        {
            PostgresChangeFeedLog.PublicationCreated(_logger, Name, _options.PublicationName, string.Join(", ", missingNames));
        }
    }
}
