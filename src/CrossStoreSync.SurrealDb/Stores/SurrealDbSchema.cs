using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using CrossStoreSync.Model;
using CrossStoreSync.SurrealDb.Http;
using CrossStoreSync.SurrealDb.Internal;
using CrossStoreSync.SurrealDb.Telemetry;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.SurrealDb.Stores;

/// <summary>
/// What a store must know about the server before it writes: the dialect of its major version (asked once with
/// <c>GET /version</c>) and which tables are defined (each defined once per process, idempotently). Thread-safe.
/// </summary>
internal sealed class SurrealDbSchema
{
    private readonly SurrealDbClient _client;
    private readonly SurrealDbOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Task> _tables = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _versionLock = new(1, 1);
    private string? _recordFunction;

    public SurrealDbSchema(SurrealDbClient client, SurrealDbOptions options, ILogger logger)
    {
        _client = client;
        _options = options;
        _logger = logger;
        if (options.ServerMajorVersion is { } major)
        {
            _recordFunction = RecordFunctionFor(major);
        }
    }

    /// <summary>2 or 3 once known, else null.</summary>
    public int? ServerMajorVersion => _recordFunction switch
    {
        null => null,
        "type::thing" => 2,
        _ => 3,
    };

    /// <summary>The record-id function of the server's version, asking the server once when needed.</summary>
    public async ValueTask<string> GetRecordFunctionAsync(CancellationToken cancellationToken)
    {
        if (_recordFunction is { } known)
        {
            return known;
        }

        await _versionLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_recordFunction is null)
            {
                var version = await _client.GetVersionAsync(cancellationToken).ConfigureAwait(false);
                _recordFunction = RecordFunctionFor(ParseMajorVersion(version));
                SurrealDbLog.Connected(_logger, _options.StoreName, _options.Endpoint!, version, _options.Namespace, _options.Database);
            }

            return _recordFunction;
        }
        finally
        {
            _versionLock.Release();
        }
    }

    /// <summary>The major version in a <c>/version</c> answer such as <c>surrealdb-3.0.2</c>; 3 when it cannot be read (the newest dialect).</summary>
    public static int ParseMajorVersion(string version)
    {
        var text = version.StartsWith("surrealdb-", StringComparison.OrdinalIgnoreCase) ? version["surrealdb-".Length..] : version;
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        return int.TryParse(dot < 0 ? text : text[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out var major) && major == 2 ? 2 : 3;
    }

    // type::thing was renamed type::record in 3.x; in 2.x type::record means something else (PROTOCOLS.md §3.4).
    private static string RecordFunctionFor(int major) => major == 2 ? "type::thing" : "type::record";

    /// <summary>Defines the collection's table and indexes once (<c>IF NOT EXISTS</c>); a failed definition is tried again by the next caller.</summary>
    public Task EnsureTableAsync(string collection, CancellationToken cancellationToken)
    {
        if (_tables.TryGetValue(collection, out var earlier) && (earlier.IsFaulted || earlier.IsCanceled))
        {
            // A definition that failed earlier (server down) is tried again instead of being cached.
            _tables.TryRemove(new KeyValuePair<string, Task>(collection, earlier));
        }

        var task = _tables.GetOrAdd(collection, c => DefineTableAsync(c));
        return task.WaitAsync(cancellationToken);
    }

    private async Task DefineTableAsync(string collection)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        var sql = new StringBuilder("DEFINE TABLE IF NOT EXISTS ");
        SurrealQl.Table(sql, collection).Append(" SCHEMALESS;\nDEFINE INDEX IF NOT EXISTS css_bucket ON TABLE ");
        SurrealQl.Table(sql, collection).Append(" FIELDS _sync.bucket;\nDEFINE INDEX IF NOT EXISTS css_pos ON TABLE ");
        SurrealQl.Table(sql, collection).Append(" FIELDS _sync.pos;\nDEFINE INDEX IF NOT EXISTS css_tomb ON TABLE ");
        SurrealQl.Table(sql, collection).Append(" FIELDS _sync.deleted, _sync.version;");

        // Not cancelled by one caller's token: other callers may be waiting on the same definition.
        using var response = await _client.QueryAsync(sql.ToString(), new RequestContext(_options.StoreName, "define table " + collection, null), CancellationToken.None).ConfigureAwait(false);
    }
}
