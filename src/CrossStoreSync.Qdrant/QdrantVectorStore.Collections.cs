using CrossStoreSync.Errors;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Grpc.Core;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant;

/// <summary>Start-up: server version check, collections and payload indexes.</summary>
public sealed partial class QdrantVectorStore
{
    /// <summary>
    /// Checks the server version, then creates each vector collection that is missing (named vector, size, distance)
    /// and the payload indexes on <c>_sync.bucket</c>, <c>_sync.version</c>, <c>_sync.live</c> and <c>_sync.origin</c>.
    /// Collections without a vector dimension are not created: the store holds nothing for them.
    /// </summary>
    /// <exception cref="SyncStoreException">A collection exists with another vector size or distance, or the server is
    /// older than 1.17 (permanent); or Qdrant failed (<see cref="QdrantException"/>).</exception>
    public async ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        await CheckServerVersionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var definition in collections)
        {
            var configured = _options.Collections.TryGetValue(definition.Name, out var c) ? c : null;
            if ((configured?.Dimension ?? definition.VectorDimension) is not { } dimension)
            {
                continue;
            }

            if (configured?.Dimension is { } d && definition.VectorDimension is { } engineDimension && d != engineDimension)
            {
                throw Permanent($"Collection {SafeText.Quote(definition.Name)} is configured with dimension {d} for Qdrant but {engineDimension} in the engine.", "initialize");
            }

            if (configured?.Distance is { } distance && distance != definition.Distance)
            {
                throw Permanent($"Collection {SafeText.Quote(definition.Name)} is configured with distance {distance} for Qdrant but {definition.Distance} in the engine.", "initialize");
            }

            var state = new CollectionState(definition.Name, _options.CollectionPrefix + definition.Name, configured?.VectorName ?? _options.DefaultVectorName, dimension, definition.Distance);
            await EnsureCollectionAsync(state, cancellationToken).ConfigureAwait(false);
            await EnsureIndexesAsync(state, cancellationToken).ConfigureAwait(false);
            _collections[definition.Name] = state;
        }
    }

    private async Task CheckServerVersionAsync(CancellationToken cancellationToken)
    {
        var health = await _calls.CallAsync("initialize", null, null, 0, static (client, _, ct) => client.HealthAsync(ct), cancellationToken).ConfigureAwait(false);
        var text = string.IsNullOrEmpty(health.Version) ? null : health.Version;
        QdrantLog.ServerVersion(_logger, Name, SafeText.Text(text ?? "unknown", 64));

        // Development builds report names such as "master"; only a parseable release number is checked.
        if (text is not null && Version.TryParse(text.Split('-')[0], out var version) && version < MinimumServer)
        {
            throw Permanent($"Qdrant {SafeText.Text(text, 64)} is too old: the version guard needs the upsert's update filter, available from Qdrant {MinimumServer}.", "initialize");
        }
    }

    private async Task EnsureCollectionAsync(CollectionState state, CancellationToken cancellationToken)
    {
        var info = await TryGetCollectionAsync(state, cancellationToken).ConfigureAwait(false);
        if (info is null)
        {
            var vectors = new VectorParamsMap { Map = { [state.VectorName] = new VectorParams { Size = (ulong)state.Dimension, Distance = DistanceOf(state.Distance) } } };
            try
            {
                await _calls.CallAsync(
                    "initialize", state.QdrantName, null, (state.QdrantName, vectors),
                    static async (client, s, ct) =>
                    {
                        await client.CreateCollectionAsync(s.QdrantName, s.vectors, cancellationToken: ct).ConfigureAwait(false);
                        return true;
                    },
                    cancellationToken).ConfigureAwait(false);
                QdrantLog.CollectionCreated(_logger, Name, state.QdrantName, state.VectorName, state.Dimension, state.Distance.ToString());
                return;
            }
            catch (QdrantException ex) when (ex.StatusCode == StatusCode.AlreadyExists)
            {
                // Another process created it between our read and our create: check what it created.
            }

            info = await TryGetCollectionAsync(state, cancellationToken).ConfigureAwait(false)
                ?? throw Permanent($"Qdrant collection {SafeText.Quote(state.QdrantName)} was reported as existing, then as missing.", "initialize");
        }

        CheckExistingConfig(state, info);
    }

    private async Task<CollectionInfo?> TryGetCollectionAsync(CollectionState state, CancellationToken cancellationToken)
    {
        try
        {
            return await _calls.CallAsync(
                "initialize", state.QdrantName, null, state.QdrantName,
                static (client, name, ct) => client.GetCollectionInfoAsync(name, ct),
                cancellationToken).ConfigureAwait(false);
        }
        catch (QdrantException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
    }

    private void CheckExistingConfig(CollectionState state, CollectionInfo info)
    {
        var vectors = info.Config?.Params?.VectorsConfig;
        if (vectors is null || vectors.ConfigCase == VectorsConfig.ConfigOneofCase.None)
        {
            throw Permanent($"Qdrant collection {SafeText.Quote(state.QdrantName)} reports no vector configuration.", "initialize");
        }

        if (vectors.ConfigCase == VectorsConfig.ConfigOneofCase.Params)
        {
            throw Permanent($"Qdrant collection {SafeText.Quote(state.QdrantName)} exists with a single unnamed vector; this store needs the named vector {SafeText.Quote(state.VectorName)} (size {state.Dimension}, {state.Distance}). Use another collection or CollectionPrefix.", "initialize");
        }

        if (!vectors.ParamsMap.Map.TryGetValue(state.VectorName, out var vector))
        {
            throw Permanent($"Qdrant collection {SafeText.Quote(state.QdrantName)} exists without the named vector {SafeText.Quote(state.VectorName)}.", "initialize");
        }

        if (vector.Size != (ulong)state.Dimension || vector.Distance != DistanceOf(state.Distance))
        {
            throw Permanent(
                $"Qdrant collection {SafeText.Quote(state.QdrantName)} exists with vector {SafeText.Quote(state.VectorName)} of size {vector.Size} and distance {vector.Distance}, but collection {SafeText.Quote(state.Collection)} is configured with size {state.Dimension} and distance {state.Distance}. Use a new collection (re-embedding) instead of changing it in place.",
                "initialize");
        }
    }

    private async Task EnsureIndexesAsync(CollectionState state, CancellationToken cancellationToken)
    {
        // Creating an index that exists is accepted by Qdrant, so this is idempotent.
        (string Field, PayloadSchemaType Schema)[] indexes =
        [
            (SyncPayload.BucketPath, PayloadSchemaType.Integer),
            (SyncPayload.VersionPath, PayloadSchemaType.Integer),
            (SyncPayload.LivePath, PayloadSchemaType.Bool),
            (SyncPayload.OriginPath, PayloadSchemaType.Keyword),
        ];
        foreach (var (field, schema) in indexes)
        {
            await _calls.CallAsync(
                "initialize", state.QdrantName, null, (state.QdrantName, field, schema),
                static (client, s, ct) => client.CreatePayloadIndexAsync(s.QdrantName, s.field, s.schema, wait: true, cancellationToken: ct),
                cancellationToken).ConfigureAwait(false);
        }
    }
}
