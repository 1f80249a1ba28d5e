using System.Globalization;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.SurrealDb.Http;
using CrossStoreSync.SurrealDb.Internal;
using CrossStoreSync.SurrealDb.Stores;
using CrossStoreSync.SurrealDb.Telemetry;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.SurrealDb.ChangeFeed;

/// <summary>
/// Follows SurrealDB's change feed (<c>SHOW CHANGES FOR TABLE … SINCE</c>) of the source tables and writes changes
/// made there by other programs through the engine (<see cref="ISyncManager"/>), so they reach every replica, like
/// CDC. The position (the last versionstamp handled, per table) is stored in SurrealDB, table
/// <c>_crossstoresync_feed</c>, after the changes were written, so a restart resumes where it stopped and at worst
/// writes the last batch again (harmless: same content).
/// </summary>
/// <remarks>
/// <para>
/// A change is the library's own when the record's <c>_sync.hash</c> is the content hash of what the record holds
/// (tombstones included); those are skipped, which also ends the echo of each ingested change. A foreign upsert is
/// written as an upsert (document = <c>data</c>, or the whole record when it has no <c>data</c>); a foreign
/// <c>DELETE</c> as a delete. Ingested writes get new versions from the engine's clock.
/// </para>
/// <para>Thread-safe: polls are serialised. Runs as a hosted service when registered with <c>AddSurrealDbChangeFeed</c>.</para>
/// </remarks>
public sealed class SurrealDbChangeFeed : BackgroundService
{
    private const string PositionTable = "_crossstoresync_feed";
    private readonly SurrealDbDocumentStore _store;
    private readonly ISyncManager _manager;
    private readonly IReadOnlyList<string> _tables;
    private readonly SurrealDbChangeFeedOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private bool _prepared;

    /// <summary>Creates a feed over the tables of <paramref name="collections"/> (or <see cref="SurrealDbChangeFeedOptions.Collections"/> when set).</summary>
    /// <exception cref="ArgumentException">An option is invalid, or no collection is given.</exception>
    public SurrealDbChangeFeed(SurrealDbDocumentStore store, ISyncManager manager, IReadOnlyList<string> collections, SurrealDbChangeFeedOptions options, ILogger<SurrealDbChangeFeed>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(collections);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _tables = options.Collections.Count > 0 ? [.. options.Collections] : [.. collections];
        if (_tables.Count == 0)
        {
            throw new ArgumentException("The SurrealDB change feed has no table to follow: configure collections.", nameof(collections));
        }

        foreach (var table in _tables)
        {
            EntityKey.ValidateCollection(table, nameof(collections));
        }

        _store = store;
        _manager = manager;
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Reads every change available now, writes the foreign ones through the engine and stores the new position.</summary>
    /// <returns>How many changes were written, and the ticket of the last write (to wait for the replicas).</returns>
    /// <exception cref="SyncStoreException">SurrealDB failed.</exception>
    public async Task<ChangeFeedPollResult> PollAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await PrepareAsync(cancellationToken).ConfigureAwait(false);
            var written = 0;
            SyncTicket? ticket = null;
            foreach (var table in _tables)
            {
                while (true)
                {
                    var (count, last, full) = await PollTableAsync(table, cancellationToken).ConfigureAwait(false);
                    written += count;
                    ticket = last ?? ticket;
                    if (!full)
                    {
                        break;
                    }
                }
            }

            return new ChangeFeedPollResult(written, ticket);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Switches the change feed on for the followed tables before the host reports started, then polls in the background.</summary>
    /// <remarks>Changes made before the feed was first switched on are not in SurrealDB's feed; a consistency check finds them.</remarks>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await PrepareAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var found = false;
            try
            {
                found = (await PollAsync(stoppingToken).ConfigureAwait(false)).Written > 0;
            }
            catch (Exception ex) when (ex is SyncStoreException or CrossStoreSyncException && !stoppingToken.IsCancellationRequested)
            {
                SurrealDbLog.FeedFailed(_logger, _store.Name, ex);
            }

            if (!found)
            {
                try
                {
                    await Task.Delay(_options.PollInterval, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (_prepared)
        {
            return;
        }

        // The feed must be switched on for tables that exist already, so ALTER follows DEFINE … IF NOT EXISTS.
        var seconds = ((long)Math.Ceiling(_options.Retention.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        var sql = new StringBuilder("DEFINE TABLE IF NOT EXISTS ");
        SurrealQl.Table(sql, PositionTable).Append(" SCHEMALESS;\n");
        foreach (var table in _tables)
        {
            await _store.Schema.EnsureTableAsync(table, cancellationToken).ConfigureAwait(false);
            sql.Append("ALTER TABLE ");
            SurrealQl.Table(sql, table).Append(" CHANGEFEED ").Append(seconds).Append("s;\n");
        }

        using (await _store.Client.QueryAsync(sql.ToString(), new RequestContext(_store.Name, "enable change feed", null), cancellationToken).ConfigureAwait(false))
        {
        }

        var function = await _store.Schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var table in _tables)
        {
            var read = new StringBuilder("SELECT VALUE versionstamp FROM ONLY ");
            AppendPositionRecord(read, function, table).Append(';');
            using var response = await _store.Client.QueryAsync(read.ToString(), new RequestContext(_store.Name, "read feed position", null), cancellationToken).ConfigureAwait(false);
            var value = response[0].Result;
            _positions[table] = value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var position) ? position : -1;
        }

        _prepared = true;
    }

    private async Task<(int Written, SyncTicket? Ticket, bool Full)> PollTableAsync(string table, CancellationToken cancellationToken)
    {
        var since = _positions[table] + 1;
        var sql = new StringBuilder("SHOW CHANGES FOR TABLE ");
        SurrealQl.Table(sql, table).Append(" SINCE ");
        SurrealQl.Integer(sql, since).Append(" LIMIT ");
        SurrealQl.Integer(sql, _options.BatchSize).Append(';');
        var context = new RequestContext(_store.Name, "read change feed", null);

        // The last action per key wins inside a batch; order between keys does not matter to the engine.
        var upserts = new Dictionary<EntityKey, SyncEntity>();
        var deletes = new HashSet<EntityKey>();
        long last;
        int sets;
        using (var response = await _store.Client.QueryAsync(sql.ToString(), context, cancellationToken).ConfigureAwait(false))
        {
            var result = response[0].Result;
            sets = result.ValueKind == JsonValueKind.Array ? result.GetArrayLength() : 0;
            if (sets == 0)
            {
                return (0, null, false);
            }

            last = since - 1;
            foreach (var set in result.EnumerateArray())
            {
                last = set.GetProperty("versionstamp").GetInt64();
                if (!set.TryGetProperty("changes", out var changes) || changes.ValueKind != JsonValueKind.Array)
                {
                    continue;
                }

                foreach (var change in changes.EnumerateArray())
                {
                    // An update is {"update": record}, or {"current": record, "update": [patch]} on tables defined with
                    // INCLUDE ORIGINAL.
                    if (change.TryGetProperty("current", out var record) && record.ValueKind == JsonValueKind.Object
                        || change.TryGetProperty("update", out record) && record.ValueKind == JsonValueKind.Object)
                    {
                        if (ReadForeignUpsert(table, record) is { } entity)
                        {
                            deletes.Remove(entity.Key);
                            upserts[entity.Key] = entity;
                        }
                    }
                    else if (change.TryGetProperty("delete", out var removed) && KeyOf(table, removed) is { } key)
                    {
                        upserts.Remove(key);
                        deletes.Add(key);
                    }
                }
            }
        }

        SyncTicket? ticket = null;
        if (upserts.Count > 0)
        {
            ticket = await _manager.WriteBatchAsync([.. upserts.Values], cancellationToken).ConfigureAwait(false);
        }

        foreach (var key in deletes)
        {
            ticket = await _manager.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }

        await SavePositionAsync(table, last, cancellationToken).ConfigureAwait(false);
        _positions[table] = last;
        var written = upserts.Count + deletes.Count;
        if (written > 0)
        {
            SurrealDbLog.FeedIngested(_logger, _store.Name, written, table, last);
        }

        return (written, ticket, sets >= _options.BatchSize);
    }

    private SyncEntity? ReadForeignUpsert(string table, JsonElement record)
    {
        if (KeyOf(table, record) is not { } key)
        {
            return null;
        }

        if (record.TryGetProperty("_sync", out var sync) && sync.ValueKind == JsonValueKind.Object)
        {
            try
            {
                var row = SurrealRecordCodec.Decode(record, table);
                if (EntityEncoding.ComputeContentHash(row.Entity) == row.RecordedHash)
                {
                    return null; // written by the library (or identical to what it wrote)
                }
            }
            catch (FormatException)
            {
                // Falls through: a record edited into another shape is read as a foreign one.
            }

            if (sync.TryGetProperty("deleted", out var deleted) && deleted.ValueKind == JsonValueKind.True)
            {
                return null; // a tombstone
            }
        }

        try
        {
            return SurrealRecordCodec.DecodeForeign(record, key);
        }
        catch (FormatException ex)
        {
            SurrealDbLog.FeedSkipped(_logger, _store.Name, SafeText.Quote(key.Id), table, SafeText.Text(ex.Message));
            return null;
        }
    }

    private EntityKey? KeyOf(string table, JsonElement record)
    {
        var rendered = record.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : string.Empty;
        if (!RecordIdParser.TryParse(rendered, out var recordTable, out var key) || recordTable != table)
        {
            SurrealDbLog.FeedSkipped(_logger, _store.Name, SafeText.Quote(rendered), table, "its record id cannot be read");
            return null;
        }

        try
        {
            return new EntityKey(table, key);
        }
        catch (ArgumentException ex)
        {
            SurrealDbLog.FeedSkipped(_logger, _store.Name, SafeText.Quote(rendered), table, SafeText.Text(ex.Message));
            return null;
        }
    }

    private async Task SavePositionAsync(string table, long versionstamp, CancellationToken cancellationToken)
    {
        var function = await _store.Schema.GetRecordFunctionAsync(cancellationToken).ConfigureAwait(false);
        var sql = new StringBuilder("UPSERT ");
        AppendPositionRecord(sql, function, table).Append(" CONTENT { versionstamp: ");
        SurrealQl.Integer(sql, versionstamp).Append(" } RETURN NONE;");
        using (await _store.Client.QueryAsync(sql.ToString(), new RequestContext(_store.Name, "save feed position", null), cancellationToken).ConfigureAwait(false))
        {
        }
    }

    private StringBuilder AppendPositionRecord(StringBuilder sql, string function, string table)
    {
        sql.Append(function).Append('(');
        SurrealQl.String(sql, PositionTable).Append(',');
        return SurrealQl.String(sql, _store.Name + "/" + table).Append(')');
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }
}

/// <summary>What one <see cref="SurrealDbChangeFeed.PollAsync"/> did.</summary>
/// <param name="Written">Changes made outside the library that were written through the engine.</param>
/// <param name="Ticket">The ticket of the last of those writes, to wait for the replicas; null when none.</param>
public readonly record struct ChangeFeedPollResult(int Written, SyncTicket? Ticket);
