using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.Qdrant;

/// <summary>
/// A vector store in Qdrant, over its REST API. Each entity collection is a Qdrant collection with one named vector;
/// each entity a point whose id is the name-based UUID of the entity id and whose payload holds <c>_sync</c> (original
/// id, version, hash, bucket, live/deleted flags, origin). Deletes leave a vector-less tombstone point so an older
/// upsert cannot bring the entity back. Thread-safe.
/// </summary>
/// <remarks>
/// <para>
/// Version guard: a batch first reads the stored versions of its points and drops the changes that are not newer
/// (Qdrant cannot compare a payload with the incoming value). The remaining race — another writer changing a point
/// between that read and the write — is closed by the write itself: it carries an <c>update_filter</c> (Qdrant 1.17+)
/// that lets each existing point be replaced only while its version is still the one that was read, and a re-read
/// retries the points whose guard failed. Within one engine the race does not even arise, because the dispatcher
/// applies one batch at a time per store and keeps per-key order; the filter protects against a second writer.
/// </para>
/// <para>Requires Qdrant 1.17 or later (for <c>update_filter</c>); <see cref="InitializeAsync"/> checks the version.</para>
/// </remarks>
public sealed partial class QdrantVectorStore : IVectorStore, ITombstoneStore
{
    private const int MaxGuardRounds = 8;
    private static readonly Version MinimumServer = new(1, 17);
    private readonly QdrantVectorStoreOptions _options;
    private readonly QdrantHttp _http;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CollectionState> _collections = new(StringComparer.Ordinal);

    /// <summary>Creates the store. Nothing is sent until <see cref="InitializeAsync"/>.</summary>
    /// <param name="httpClientFactory">Creates the HTTP clients; one is created per request, as the factory intends.</param>
    /// <param name="options">The options; validated here.</param>
    /// <param name="loggerFactory">Logging, or null for none.</param>
    /// <param name="timeProvider">Time for retries and timeouts. <value>Default <see cref="TimeProvider.System"/>.</value></param>
    /// <param name="httpClientName">The named client to create. <value>Default <c>CrossStoreSync.Qdrant.{StoreName}</c>.</value></param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public QdrantVectorStore(IHttpClientFactory httpClientFactory, QdrantVectorStoreOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, string? httpClientName = null)
    {
        ArgumentNullException.ThrowIfNull(httpClientFactory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<QdrantVectorStore>();
        _http = new QdrantHttp(httpClientFactory, httpClientName ?? HttpClientName(options.StoreName), options, timeProvider ?? TimeProvider.System, _logger);
    }

    /// <summary>The default named HTTP client of a store.</summary>
    public static string HttpClientName(string storeName) => "CrossStoreSync.Qdrant." + storeName;

    /// <inheritdoc />
    public string Name => _options.StoreName;

    /// <inheritdoc />
    public StoreKind Kind => StoreKind.Vector;

    /// <summary>
    /// Writes a batch with the version guard. Upserts replace the point (vector and payload); an upsert without a
    /// vector and a delete both leave a vector-less point that keeps the version. Changes of collections without a
    /// vector dimension are ignored unless they carry a vector, which is rejected.
    /// </summary>
    /// <exception cref="SyncStoreException">A change is invalid (permanent), or Qdrant failed.</exception>
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var groups = new Dictionary<string, List<EntityChange>>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            Validate(change);
            if (!_collections.ContainsKey(change.Key.Collection))
            {
                continue;
            }

            if (!groups.TryGetValue(change.Key.Collection, out var list))
            {
                groups[change.Key.Collection] = list = [];
            }

            list.Add(change);
        }

        foreach (var (collection, list) in groups)
        {
            var state = _collections[collection];
            for (var start = 0; start < list.Count; start += _options.BatchSize)
            {
                var chunk = list.GetRange(start, Math.Min(_options.BatchSize, list.Count - start));
                await ApplyGuardedAsync(state, chunk, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Validate(EntityChange change)
    {
        if (change is null)
        {
            throw Permanent("A batch contains a null change.", "apply");
        }

        if (change.Key.IsDefault)
        {
            throw Permanent("A change has a default key.", "apply");
        }

        if (change.Kind == ChangeKind.Upsert && change.Entity is null)
        {
            throw Permanent($"Upsert of '{change.Key}' carries no entity.", "apply", change.Key);
        }

        if (change.Entity is not { HasVector: true } entity)
        {
            return;
        }

        if (!_collections.TryGetValue(change.Key.Collection, out var state))
        {
            throw Permanent($"Collection '{change.Key.Collection}' has no vector dimension configured in store '{Name}'.", "apply", change.Key);
        }

        if (entity.Vector.Length != state.Dimension)
        {
            throw Permanent($"Vector of '{change.Key}' has dimension {entity.Vector.Length}; collection '{state.Collection}' in store '{Name}' expects {state.Dimension}.", "apply", change.Key);
        }
    }

    private async Task ApplyGuardedAsync(CollectionState state, List<EntityChange> changes, CancellationToken cancellationToken)
    {
        var pending = changes;
        for (var round = 1; round <= MaxGuardRounds; round++)
        {
            var stored = await ReadVersionsAsync(state, pending, cancellationToken).ConfigureAwait(false);
            var winners = new List<EntityChange>(pending.Count);
            foreach (var change in pending)
            {
                if (stored.GetValueOrDefault(PointIds.For(change.Key.Id)) is not { } version || change.Version.Value > version)
                {
                    winners.Add(change);
                }
            }

            if (winners.Count < pending.Count)
            {
                QdrantLog.StaleSkipped(_logger, Name, state.Collection, pending.Count - winners.Count);
            }

            if (winners.Count == 0)
            {
                return;
            }

            await UpsertAsync(state, winners, stored, cancellationToken).ConfigureAwait(false);

            // A point whose guard failed still holds an older version than ours: someone wrote it in between.
            var after = await ReadVersionsAsync(state, winners, cancellationToken).ConfigureAwait(false);
            pending = [];
            foreach (var change in winners)
            {
                if (after.GetValueOrDefault(PointIds.For(change.Key.Id)) is not { } version || version < change.Version.Value)
                {
                    pending.Add(change);
                }
            }

            if (pending.Count == 0)
            {
                return;
            }

            QdrantLog.GuardConflict(_logger, Name, state.Collection, pending.Count, round);
        }

        throw new QdrantException($"Qdrant store '{Name}': {pending.Count} point(s) of '{state.Collection}' kept changing under the version guard for {MaxGuardRounds} rounds.", true, null, null, Name, pending[0].Key, "apply");
    }

    /// <summary>Reads the stored <c>_sync.version</c> of the changes' points; absent points and points without one map to null.</summary>
    private async Task<Dictionary<string, long?>> ReadVersionsAsync(CollectionState state, List<EntityChange> changes, CancellationToken cancellationToken)
    {
        var body = JsonBody.Write(changes, static (w, list) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("ids");
            foreach (var change in list)
            {
                w.WriteStringValue(PointIds.For(change.Key.Id));
            }

            w.WriteEndArray();
            w.WriteStartArray("with_payload");
            w.WriteStringValue(SyncPayload.VersionPath);
            w.WriteEndArray();
            w.WriteBoolean("with_vector", false);
            w.WriteEndObject();
        });
        using var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points", body, "apply", changes.Count == 1 ? changes[0].Key : null, cancellationToken).ConfigureAwait(false);
        var result = new Dictionary<string, long?>(changes.Count, StringComparer.Ordinal);
        foreach (var record in response!.RootElement.GetProperty("result").EnumerateArray())
        {
            var parsed = QdrantRecord.Parse(record, state.VectorName);
            result[parsed.PointId] = parsed.Version;
        }

        return result;
    }

    private async Task UpsertAsync(CollectionState state, List<EntityChange> changes, Dictionary<string, long?> stored, CancellationToken cancellationToken)
    {
        var body = JsonBody.Write((state, changes, stored), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("points");
            foreach (var change in s.changes)
            {
                WritePoint(w, s.state, change);
            }

            w.WriteEndArray();

            // One filter for the request, one branch per point: an existing point is replaced only while it still holds
            // the version read above (or none at all); new points are inserted regardless (PROTOCOLS.md §1.4).
            w.WriteStartObject("update_filter");
            w.WriteStartArray("should");
            foreach (var change in s.changes)
            {
                var id = PointIds.For(change.Key.Id);
                w.WriteStartObject();
                w.WriteStartArray("must");
                w.WriteStartObject();
                w.WriteStartArray("has_id");
                w.WriteStringValue(id);
                w.WriteEndArray();
                w.WriteEndObject();
                if (s.stored.GetValueOrDefault(id) is { } version)
                {
                    JsonBody.MatchCondition(w, SyncPayload.VersionPath, version);
                }
                else
                {
                    w.WriteStartObject();
                    w.WriteStartObject("is_empty");
                    w.WriteString("key", SyncPayload.VersionPath);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        });
        var key = changes.Count == 1 ? changes[0].Key : (EntityKey?)null;
        using var _ = await _http.SendAsync(HttpMethod.Put, $"collections/{state.QdrantName}/points?wait=true", body, "apply", key, cancellationToken).ConfigureAwait(false);
    }

    private static void WritePoint(Utf8JsonWriter w, CollectionState state, EntityChange change)
    {
        var vector = change.Entity?.Vector ?? default;
        w.WriteStartObject();
        w.WriteString("id", PointIds.For(change.Key.Id));
        w.WriteStartObject("vector");
        if (!vector.IsEmpty)
        {
            w.WriteStartArray(state.VectorName);
            foreach (var x in vector.Span)
            {
                w.WriteNumberValue(x);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
        w.WriteStartObject("payload");
        w.WriteStartObject(SyncPayload.Root);
        w.WriteString(SyncPayload.Key, change.Key.Id);
        w.WriteNumber(SyncPayload.Version, change.Version.Value);
        w.WriteString(SyncPayload.Hash, change.ContentHash.ToString("x32", CultureInfo.InvariantCulture));
        w.WriteNumber(SyncPayload.Bucket, KeyHash.Bucket(change.Key));
        w.WriteBoolean(SyncPayload.Live, !vector.IsEmpty);
        w.WriteBoolean(SyncPayload.Deleted, change.Kind == ChangeKind.Delete);
        if (change.Origin is null)
        {
            w.WriteNull(SyncPayload.Origin);
        }
        else
        {
            w.WriteString(SyncPayload.Origin, change.Origin);
        }

        if (!vector.IsEmpty && state.Distance == VectorDistance.Cosine)
        {
            w.WriteString(SyncPayload.Raw, QdrantRecord.EncodeVector(vector.Span));
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static string DistanceName(VectorDistance distance) => distance switch
    {
        VectorDistance.Cosine => "Cosine",
        VectorDistance.Dot => "Dot",
        _ => throw new ArgumentOutOfRangeException(nameof(distance), distance, "Unknown distance."),
    };

    private SyncStoreException Permanent(string message, string operation, EntityKey? key = null) =>
        new($"Qdrant store '{Name}': {message}", false, Name, key, operation);

    /// <summary>An entity collection as this store maps it to Qdrant.</summary>
    private sealed record CollectionState(string Collection, string QdrantName, string VectorName, int Dimension, VectorDistance Distance);
}
