using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Neo4j.Internal;
using CrossStoreSync.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.Neo4j;

/// <summary>
/// A graph store in Neo4j, over the Query API v2 (Neo4j 5.19+, enabled by default from 5.25). Each entity is a node
/// labelled with its collection and <c>:SyncEntity</c> (key in <c>id</c>, unique per collection; <c>_sync_*</c>
/// properties), its edges typed relationships. Thread-safe.
/// </summary>
/// <remarks>
/// <para>
/// An edge to an entity that does not exist yet creates a placeholder node (no <c>_sync_version</c>), which a later
/// upsert of that entity fills in; placeholders are neither counted nor digested, and read as non-existing neighbours.
/// </para>
/// <para>
/// A delete detaches the node's own (outgoing) relationships and keeps the node as a versioned tombstone, so an older
/// upsert cannot bring it back. Relationships other entities declare towards it are not removed: they are part of
/// those entities (and of their digests), and read as edges to a non-existing neighbour — as in the SQLite graph store.
/// </para>
/// <para>
/// Writes: one <c>UNWIND $rows</c> statement per collection of a batch, each an implicit transaction, with the
/// version guard inside the statement. Every statement text comes from <see cref="CypherStatements"/>.
/// </para>
/// </remarks>
public sealed class Neo4jGraphStore : IGraphStore, ITombstoneStore
{
    private readonly Neo4jGraphStoreOptions _options;
    private readonly Neo4jHttp _http;
    private readonly ILogger _logger;

    /// <summary>Creates the store. Nothing is sent until <see cref="InitializeAsync"/>.</summary>
    /// <param name="httpClientFactory">Creates the HTTP clients; one is created per request, as the factory intends.</param>
    /// <param name="options">The options; validated here.</param>
    /// <param name="loggerFactory">Logging, or null for none.</param>
    /// <param name="timeProvider">Time for retries and timeouts. <value>Default <see cref="TimeProvider.System"/>.</value></param>
    /// <param name="httpClientName">The named client to create. <value>Default <c>CrossStoreSync.Neo4j.{StoreName}</c>.</value></param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public Neo4jGraphStore(IHttpClientFactory httpClientFactory, Neo4jGraphStoreOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, string? httpClientName = null)
    {
        ArgumentNullException.ThrowIfNull(httpClientFactory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<Neo4jGraphStore>();
        _http = new Neo4jHttp(httpClientFactory, httpClientName ?? HttpClientName(options.StoreName), options, timeProvider ?? TimeProvider.System, _logger);
    }

    /// <summary>The default named HTTP client of a store.</summary>
    public static string HttpClientName(string storeName) => "CrossStoreSync.Neo4j." + storeName;

    /// <inheritdoc />
    public string Name => _options.StoreName;

    /// <inheritdoc />
    public StoreKind Kind => StoreKind.Graph;

    /// <summary>The bookmarks of the latest answer; every request carries them, for read-your-writes in a cluster.</summary>
    public IReadOnlyList<string> Bookmarks => _http.Bookmarks;

    /// <summary>Creates, if missing, the key uniqueness constraint and the bucket index of every collection's label.</summary>
    /// <exception cref="Neo4jException">Neo4j failed.</exception>
    public async ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        foreach (var collection in collections)
        {
            EntityKey.ValidateCollection(collection.Name, nameof(collections));
            if (collection.Name == CypherStatements.CommonLabel)
            {
                throw new SyncStoreException($"Neo4j store {SafeText.Quote(Name)}: collection {SafeText.Quote(collection.Name)} would clash with the label every entity node carries.", false, Name, null, "initialize");
            }

            foreach (var statement in new[] { CypherStatements.KeyConstraint(collection.Name), CypherStatements.BucketIndex(collection.Name) })
            {
                using var _ = await _http.RunAsync(statement, 0, static (_, _) => { }, write: true, "initialize", null, cancellationToken).ConfigureAwait(false);
            }

            Neo4jLog.SchemaEnsured(_logger, Name, collection.Name);
        }
    }

    /// <summary>Writes a batch with the version guard, one statement per collection of at most <see cref="Neo4jGraphStoreOptions.BatchSize"/> entities.</summary>
    /// <exception cref="SyncStoreException">A change is invalid (permanent), or Neo4j failed (<see cref="Neo4jException"/>).</exception>
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var groups = new Dictionary<string, List<EntityChange>>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            Validate(change);
            if (!groups.TryGetValue(change.Key.Collection, out var list))
            {
                groups[change.Key.Collection] = list = [];
            }

            list.Add(change);
        }

        foreach (var (collection, list) in groups)
        {
            for (var start = 0; start < list.Count; start += _options.BatchSize)
            {
                await ApplyChunkAsync(collection, list.GetRange(start, Math.Min(_options.BatchSize, list.Count - start)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Validate(EntityChange change)
    {
        if (change is null || change.Key.IsDefault)
        {
            throw new SyncStoreException($"Neo4j store {SafeText.Quote(Name)} received a null change or a default key.", false, Name, null, "apply");
        }

        if (change.Kind == ChangeKind.Upsert && change.Entity is null)
        {
            throw new SyncStoreException($"Neo4j store {SafeText.Quote(Name)}: upsert of {SafeText.Quote(change.Key)} carries no entity.", false, Name, change.Key, "apply");
        }
    }

    private async Task ApplyChunkAsync(string collection, List<EntityChange> changes, CancellationToken cancellationToken)
    {
        var edgeGroups = new List<(string Type, string TargetLabel)>();
        var groupIndex = new Dictionary<(string, string), int>();
        foreach (var change in changes)
        {
            foreach (var edge in change.Entity?.Edges ?? [])
            {
                var pair = (edge.Type, edge.Target.Collection);
                if (!groupIndex.ContainsKey(pair))
                {
                    groupIndex[pair] = edgeGroups.Count;
                    edgeGroups.Add(pair);
                }
            }
        }

        var statement = CypherStatements.ApplyBatch(collection, edgeGroups);
        using var result = await _http.RunAsync(statement, (changes, groupIndex), static (w, s) => WriteRows(w, s.changes, s.groupIndex), write: true, "apply", changes.Count == 1 ? changes[0].Key : null, cancellationToken).ConfigureAwait(false);
        var applied = Rows(result).FirstOrDefault() is { ValueKind: JsonValueKind.Array } row ? row[0].GetInt64() : 0;
        Neo4jLog.Applied(_logger, Name, collection, applied, changes.Count);
    }

    private static void WriteRows(Utf8JsonWriter w, List<EntityChange> changes, Dictionary<(string, string), int> groupIndex)
    {
        w.WriteStartArray("rows");
        foreach (var change in changes)
        {
            w.WriteStartObject();
            w.WriteString("id", change.Key.Id);
            w.WriteNumber("version", change.Version.Value);
            w.WriteString("hash", change.ContentHash.ToString("x32", CultureInfo.InvariantCulture));
            w.WriteNumber("bucket", KeyHash.Bucket(change.Key));
            w.WriteBoolean("deleted", change.Kind == ChangeKind.Delete);
            if (change.Origin is null)
            {
                w.WriteNull("origin");
            }
            else
            {
                w.WriteString("origin", change.Origin);
            }

            if (change.Entity is { HasVector: true } entity)
            {
                w.WriteStartArray("vector");
                foreach (var x in entity.Vector.Span)
                {
                    w.WriteNumberValue(x);
                }

                w.WriteEndArray();
            }
            else
            {
                w.WriteNull("vector");
            }

            w.WriteStartArray("edges");
            var ord = 0;
            foreach (var edge in change.Entity?.Edges ?? [])
            {
                w.WriteStartObject();
                w.WriteNumber("g", groupIndex[(edge.Type, edge.Target.Collection)]);
                w.WriteString("id", edge.Target.Id);
                if (edge.Properties.IsEmpty)
                {
                    w.WriteNull("props");
                }
                else
                {
                    // Kept verbatim as text: relationship properties cannot be maps, and digests need the exact bytes.
                    w.WriteString("props", Encoding.UTF8.GetString(edge.Properties.Span));
                }

                w.WriteNumber("ord", ord++);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        EntityKey.ValidateCollection(collection, nameof(collection));
        var result = new List<EntityDigest>(ids.Count);
        for (var start = 0; start < ids.Count; start += _options.BatchSize)
        {
            var end = Math.Min(ids.Count, start + _options.BatchSize);
            using var response = await _http.RunAsync(CypherStatements.ReadDigests(collection), (ids, start, end), static (w, s) =>
            {
                w.WriteStartArray("ids");
                for (var i = s.start; i < s.end; i++)
                {
                    w.WriteStringValue(s.ids[i]);
                }

                w.WriteEndArray();
            }, write: false, "read digests", null, cancellationToken).ConfigureAwait(false);
            foreach (var row in Rows(response))
            {
                result.Add(ToDigest(collection, row));
            }
        }

        return result;
    }

    /// <summary>Streams digests of the live nodes of a bucket range, in pages of <see cref="Neo4jGraphStoreOptions.BatchSize"/> ordered by key.</summary>
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        var statement = CypherStatements.ScanDigests(collection);
        var after = string.Empty;
        while (true)
        {
            var page = new List<EntityDigest>(_options.BatchSize);
            using (var response = await _http.RunAsync(statement, (after, range, _options.BatchSize), static (w, s) =>
            {
                w.WriteString("after", s.after);
                w.WriteNumber("first", s.range.First);
                w.WriteNumber("last", s.range.Last);
                w.WriteNumber("limit", s.BatchSize);
            }, write: false, "scan digests", null, cancellationToken).ConfigureAwait(false))
            {
                foreach (var row in Rows(response))
                {
                    page.Add(ToDigest(collection, row));
                }
            }

            foreach (var digest in page)
            {
                yield return digest;
            }

            if (page.Count < _options.BatchSize)
            {
                yield break;
            }

            after = page[^1].Key.Id;
        }
    }

    /// <inheritdoc />
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        using var response = await _http.RunAsync(CypherStatements.Count(collection), 0, static (_, _) => { }, write: false, "count", null, cancellationToken).ConfigureAwait(false);
        return Rows(response).First()[0].GetInt64();
    }

    /// <inheritdoc />
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        using var response = await _http.RunAsync(CypherStatements.RemoveByOrigin(collection), origin, static (w, o) => w.WriteString("origin", o), write: true, "remove by origin", null, cancellationToken).ConfigureAwait(false);
        return Rows(response).First()[0].GetInt64();
    }

    /// <inheritdoc />
    /// <remarks>One statement per call (<see cref="CypherStatements.PurgeTombstones"/>); a tombstone other entities still point at becomes a placeholder.</remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        using var response = await _http.RunAsync(
            CypherStatements.PurgeTombstones(collection),
            (olderThan.Value, maxCount),
            static (w, s) =>
            {
                w.WriteNumber("version", s.Value);
                w.WriteNumber("limit", s.maxCount);
            },
            write: true,
            "purge tombstones",
            null,
            cancellationToken).ConfigureAwait(false);
        return (int)Rows(response).First()[0].GetInt64();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<GraphNeighbor>> GetNeighborsAsync(EntityKey node, string? edgeType, EdgeDirection direction, CancellationToken cancellationToken)
    {
        if (node.IsDefault)
        {
            throw new ArgumentException("Node must be a valid EntityKey, not default.", nameof(node));
        }

        var result = new List<GraphNeighbor>();
        if (direction != EdgeDirection.Incoming)
        {
            await ReadNeighborsAsync(CypherStatements.OutgoingNeighbors(node.Collection), node, edgeType, EdgeDirection.Outgoing, result, cancellationToken).ConfigureAwait(false);
        }

        if (direction != EdgeDirection.Outgoing)
        {
            await ReadNeighborsAsync(CypherStatements.IncomingNeighbors(node.Collection), node, edgeType, EdgeDirection.Incoming, result, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private async Task ReadNeighborsAsync(string statement, EntityKey node, string? edgeType, EdgeDirection direction, List<GraphNeighbor> result, CancellationToken cancellationToken)
    {
        using var response = await _http.RunAsync(statement, (node.Id, edgeType), static (w, s) =>
        {
            w.WriteString("id", s.Id);
            if (s.edgeType is null)
            {
                w.WriteNull("type");
            }
            else
            {
                w.WriteString("type", s.edgeType);
            }
        }, write: false, "neighbors", node, cancellationToken).ConfigureAwait(false);
        foreach (var row in Rows(response))
        {
            if (row[1].ValueKind == JsonValueKind.String && row[2].ValueKind == JsonValueKind.String)
            {
                result.Add(new GraphNeighbor(new EntityKey(row[1].GetString()!, row[2].GetString()!), row[0].GetString()!, direction, row[3].ValueKind == JsonValueKind.True));
            }
        }
    }

    /// <summary>A digest row: <c>id, version, hash, bucket, edges</c> with edges as <c>[type, collection, id, props]</c>.</summary>
    private static EntityDigest ToDigest(string collection, JsonElement row)
    {
        var key = new EntityKey(collection, row[0].GetString()!);
        var edges = new List<SyncEdge>();
        foreach (var edge in row[4].EnumerateArray())
        {
            edges.Add(ToEdge(key, edge));
        }

        var hash = row[2].ValueKind == JsonValueKind.String && UInt128.TryParse(row[2].GetString(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h) ? h : UInt128.Zero;
        var projection = ProjectionHash.Compute(new SyncEntity(key, default, default, edges), StoreKind.Graph);
        return new EntityDigest(key, new HlcTimestamp(row[1].GetInt64()), hash, projection, (uint)row[3].GetInt64());
    }

    private static SyncEdge ToEdge(EntityKey source, JsonElement edge)
    {
        var type = edge[0].GetString();
        var collection = edge[1].ValueKind == JsonValueKind.String ? edge[1].GetString() : null;
        var id = edge[2].ValueKind == JsonValueKind.String ? edge[2].GetString() : null;
        var props = edge[3].ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(edge[3].GetString()!) : default(ReadOnlyMemory<byte>);
        try
        {
            return new SyncEdge(type!, new EntityKey(collection!, id!), props);
        }
        catch (ArgumentException)
        {
            // A relationship edited outside the library into something no entity can declare: still a (different)
            // edge, so the projection hash shows the drift instead of hiding it.
            return new SyncEdge("INVALID_EDGE", source, Encoding.UTF8.GetBytes(edge.GetRawText()));
        }
    }

    private static IEnumerable<JsonElement> Rows(JsonDocument response) =>
        response.RootElement.TryGetProperty("data", out var data) && data.TryGetProperty("values", out var values) ? values.EnumerateArray() : [];
}
