using System.Collections.Concurrent;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Qdrant.Client;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant;

/// <summary>
/// A vector store in Qdrant, over its gRPC API with the official <see cref="QdrantClient"/>. Each entity collection is a
/// Qdrant collection with one named vector; each entity a point whose id is the name-based UUID of the entity id and
/// whose payload holds <c>_sync</c> (original id, version, hash, bucket, live/deleted flags, origin). Deletes leave a
/// vector-less tombstone point so an older upsert cannot bring the entity back. Thread-safe.
/// </summary>
/// <remarks>
/// <para>
/// Version guard: a batch first reads the stored versions of its points and drops the changes that are not newer
/// (Qdrant cannot compare a payload with the incoming value). The remaining race — another writer changing a point
/// between that read and the write — is closed by the write itself: the upsert carries an update filter (Qdrant 1.17+)
/// that lets each existing point be replaced only while its version is still the one that was read, and a re-read
/// retries the points whose guard failed. Within one engine the race does not even arise, because the dispatcher
/// applies one batch at a time per store and keeps per-key order; the filter protects against a second writer.
/// </para>
/// <para>
/// Requires Qdrant 1.17 or later (for the update filter); <see cref="InitializeAsync"/> checks the version. The store
/// either creates its client from <see cref="QdrantVectorStoreOptions.Address"/> (and disposes it) or uses one it is
/// given (and leaves it to its owner). It needs the concrete <see cref="QdrantClient"/>: <see cref="IQdrantClient"/>
/// has no upsert with an update filter.
/// </para>
/// </remarks>
public sealed partial class QdrantVectorStore : IVectorStore, ITombstoneStore, IDisposable
{
    private const int MaxGuardRounds = 8;
    private static readonly Version MinimumServer = new(1, 17);
    private readonly QdrantVectorStoreOptions _options;
    private readonly QdrantConnection? _ownConnection;
    private readonly QdrantCalls _calls;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CollectionState> _collections = new(StringComparer.Ordinal);

    /// <summary>Creates the store with a client of its own, built from <see cref="QdrantVectorStoreOptions.Address"/>, <see cref="QdrantVectorStoreOptions.ApiKey"/> and <see cref="QdrantVectorStoreOptions.CertificateThumbprint"/>. Nothing is sent until <see cref="InitializeAsync"/>.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="loggerFactory">Logging, or null for none.</param>
    /// <param name="timeProvider">Time for retries and timeouts. <value>Default <see cref="TimeProvider.System"/>.</value></param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public QdrantVectorStore(QdrantVectorStoreOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(clientGiven: false);
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<QdrantVectorStore>();
        _ownConnection = QdrantConnection.Create(options);
        _calls = new QdrantCalls(_ownConnection.Client, options, timeProvider ?? TimeProvider.System, _logger);
    }

    /// <summary>Creates the store over an existing client (for example the application's own, from DI); the store never disposes it. Nothing is sent until <see cref="InitializeAsync"/>.</summary>
    /// <param name="client">The client; its address, credentials and TLS settings apply.</param>
    /// <param name="options">The options; validated here. Its connection options must be null.</param>
    /// <param name="loggerFactory">Logging, or null for none.</param>
    /// <param name="timeProvider">Time for retries and timeouts. <value>Default <see cref="TimeProvider.System"/>.</value></param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public QdrantVectorStore(QdrantClient client, QdrantVectorStoreOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(clientGiven: true);
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<QdrantVectorStore>();
        _calls = new QdrantCalls(client, options, timeProvider ?? TimeProvider.System, _logger);
    }

    /// <inheritdoc />
    public string Name => _options.StoreName;

    /// <inheritdoc />
    public StoreKind Kind => StoreKind.Vector;

    /// <summary>Disposes the client the store created; a client it was given stays open.</summary>
    public void Dispose() => _ownConnection?.Dispose();

    /// <summary>
    /// Writes a batch with the version guard. Upserts replace the point (vector and payload); an upsert without a
    /// vector and a delete both leave a vector-less point that keeps the version. Changes of collections without a
    /// vector dimension are ignored unless they carry a vector, which is rejected.
    /// </summary>
    /// <exception cref="SyncStoreException">A change is invalid (permanent), or Qdrant failed (<see cref="QdrantException"/>).</exception>
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
            throw Permanent($"Upsert of {SafeText.Quote(change.Key)} carries no entity.", "apply", change.Key);
        }

        if (change.Entity is not { HasVector: true } entity)
        {
            return;
        }

        if (!_collections.TryGetValue(change.Key.Collection, out var state))
        {
            throw Permanent($"Collection {SafeText.Quote(change.Key.Collection)} has no vector dimension configured in store {SafeText.Quote(Name)}.", "apply", change.Key);
        }

        if (entity.Vector.Length != state.Dimension)
        {
            throw Permanent($"Vector of {SafeText.Quote(change.Key)} has dimension {entity.Vector.Length}; collection {SafeText.Quote(state.Collection)} in store {SafeText.Quote(Name)} expects {state.Dimension}.", "apply", change.Key);
        }
    }

    private async Task ApplyGuardedAsync(CollectionState state, List<EntityChange> changes, CancellationToken cancellationToken)
    {
        // The point id (a SHA-1 name-based UUID) is computed once per change, not at every step of every round.
        var pending = new List<Pending>(changes.Count);
        foreach (var change in changes)
        {
            pending.Add(new Pending(change, PointIds.For(change.Key.Id)));
        }

        for (var round = 1; round <= MaxGuardRounds; round++)
        {
            var stored = await ReadVersionsAsync(state, pending, cancellationToken).ConfigureAwait(false);
            var winners = new List<Pending>(pending.Count);
            foreach (var p in pending)
            {
                if (stored.GetValueOrDefault(p.PointId) is not { } version || p.Change.Version.Value > version)
                {
                    winners.Add(p);
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
            foreach (var p in winners)
            {
                if (after.GetValueOrDefault(p.PointId) is not { } version || version < p.Change.Version.Value)
                {
                    pending.Add(p);
                }
            }

            if (pending.Count == 0)
            {
                return;
            }

            QdrantLog.GuardConflict(_logger, Name, state.Collection, pending.Count, round);
        }

        throw new QdrantException(
            $"Qdrant store {SafeText.Quote(Name)}: {pending.Count} point(s) of {SafeText.Quote(state.Collection)} kept changing under the version guard for {MaxGuardRounds} rounds.",
            true, null, null, Name, state.QdrantName, pending[0].Change.Key, "apply");
    }

    /// <summary>Reads the stored <c>_sync.version</c> of the changes' points; absent points and points without one map to null.</summary>
    private async Task<Dictionary<string, long?>> ReadVersionsAsync(CollectionState state, List<Pending> changes, CancellationToken cancellationToken)
    {
        var ids = new List<PointId>(changes.Count);
        foreach (var change in changes)
        {
            ids.Add(new PointId { Uuid = change.PointId });
        }

        var points = await _calls.CallAsync(
            "apply", state.QdrantName, changes.Count == 1 ? changes[0].Change.Key : null, (state.QdrantName, ids),
            static (client, s, ct) => client.RetrieveAsync(s.QdrantName, s.ids, VersionOnly, NoVectors, cancellationToken: ct),
            cancellationToken).ConfigureAwait(false);
        var result = new Dictionary<string, long?>(changes.Count, StringComparer.Ordinal);
        foreach (var point in points)
        {
            var parsed = QdrantRecord.Parse(point, state.VectorName);
            result[parsed.PointId] = parsed.Version;
        }

        return result;
    }

    private Task UpsertAsync(CollectionState state, List<Pending> changes, Dictionary<string, long?> stored, CancellationToken cancellationToken)
    {
        var points = new List<PointStruct>(changes.Count);
        var guard = new List<(PointId, long?)>(changes.Count);
        foreach (var change in changes)
        {
            var point = ToPoint(state, change.Change, change.PointId);
            points.Add(point);
            guard.Add((point.Id, stored.GetValueOrDefault(change.PointId)));
        }

        // wait: true, so the write is visible to the re-read of the guard and to the caller's next read.
        return _calls.CallAsync(
            "apply", state.QdrantName, changes.Count == 1 ? changes[0].Change.Key : null, (state.QdrantName, points, Guard: SyncFilters.VersionGuard(guard)),
            static (client, s, ct) => client.UpsertAsync(s.QdrantName, s.points, s.Guard, wait: true, cancellationToken: ct),
            cancellationToken);
    }

    /// <summary>The point a change writes: the vector (none for tombstones and vector-less entities) and the <c>_sync</c> payload.</summary>
    internal static PointStruct ToPoint(CollectionState state, EntityChange change) => ToPoint(state, change, PointIds.For(change.Key.Id));

    private static PointStruct ToPoint(CollectionState state, EntityChange change, string pointId)
    {
        var vector = change.Entity?.Vector ?? default;
        var named = new NamedVectors();
        if (!vector.IsEmpty)
        {
            var dense = new DenseVector();
            dense.Data.Capacity = vector.Length;
            foreach (var x in vector.Span)
            {
                dense.Data.Add(x);
            }

            named.Vectors.Add(state.VectorName, new Vector { Dense = dense });
        }

        // A point must carry a vectors message even when it has no vector (Qdrant: "Expected some vectors"); an empty
        // set of named vectors is how a tombstone says "none".
        var point = new PointStruct { Id = new PointId { Uuid = pointId }, Vectors = new Vectors { Vectors_ = named } };
        var raw = !vector.IsEmpty && state.Distance == VectorDistance.Cosine ? QdrantRecord.EncodeVector(vector.Span) : null;
        SyncPayload.Write(point.Payload, change, live: !vector.IsEmpty, raw);
        return point;
    }

    // Shared request parts: protobuf messages are only read when a request is serialised, and these are never changed.
    private static readonly WithPayloadSelector VersionOnly = new() { Include = new PayloadIncludeSelector { Fields = { SyncPayload.VersionPath } } };
    private static readonly WithVectorsSelector NoVectors = new() { Enable = false };

    private static Distance DistanceOf(VectorDistance distance) => distance switch
    {
        VectorDistance.Cosine => Distance.Cosine,
        VectorDistance.Dot => Distance.Dot,
        _ => throw new ArgumentOutOfRangeException(nameof(distance), distance, "Unknown distance."),
    };

    private SyncStoreException Permanent(string message, string operation, EntityKey? key = null) =>
        new($"Qdrant store {SafeText.Quote(Name)}: {message}", false, Name, key, operation);

    /// <summary>A change of a batch with its point id.</summary>
    private readonly record struct Pending(EntityChange Change, string PointId);

    /// <summary>An entity collection as this store maps it to Qdrant.</summary>
    internal sealed record CollectionState(string Collection, string QdrantName, string VectorName, int Dimension, VectorDistance Distance);
}
