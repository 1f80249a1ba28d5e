using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;

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
                throw Permanent($"Collection '{definition.Name}' is configured with dimension {d} for Qdrant but {engineDimension} in the engine.", "initialize");
            }

            if (configured?.Distance is { } distance && distance != definition.Distance)
            {
                throw Permanent($"Collection '{definition.Name}' is configured with distance {distance} for Qdrant but {definition.Distance} in the engine.", "initialize");
            }

            var state = new CollectionState(definition.Name, _options.CollectionPrefix + definition.Name, configured?.VectorName ?? _options.DefaultVectorName, dimension, definition.Distance);
            await EnsureCollectionAsync(state, cancellationToken).ConfigureAwait(false);
            await EnsureIndexesAsync(state, cancellationToken).ConfigureAwait(false);
            _collections[definition.Name] = state;
        }
    }

    private async Task CheckServerVersionAsync(CancellationToken cancellationToken)
    {
        using var root = await _http.SendAsync(HttpMethod.Get, string.Empty, null, "initialize", null, cancellationToken).ConfigureAwait(false);
        var text = root!.RootElement.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        QdrantLog.ServerVersion(_logger, Name, text ?? "unknown");

        // Development builds report names such as "master"; only a parseable release number is checked.
        if (text is not null && Version.TryParse(text.Split('-')[0], out var version) && version < MinimumServer)
        {
            throw Permanent($"Qdrant {text} is too old: the version guard needs update_filter, available from Qdrant {MinimumServer}.", "initialize");
        }
    }

    private async Task EnsureCollectionAsync(CollectionState state, CancellationToken cancellationToken)
    {
        var path = "collections/" + state.QdrantName;
        var info = await _http.SendAsync(HttpMethod.Get, path, null, "initialize", null, cancellationToken, notFoundIsNull: true).ConfigureAwait(false);
        if (info is null)
        {
            var body = JsonBody.Write(state, static (w, s) =>
            {
                w.WriteStartObject();
                w.WriteStartObject("vectors");
                w.WriteStartObject(s.VectorName);
                w.WriteNumber("size", s.Dimension);
                w.WriteString("distance", DistanceName(s.Distance));
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            });
            try
            {
                using var created = await _http.SendAsync(HttpMethod.Put, path, body, "initialize", null, cancellationToken).ConfigureAwait(false);
                QdrantLog.CollectionCreated(_logger, Name, state.QdrantName, state.VectorName, state.Dimension, DistanceName(state.Distance));
                return;
            }
            catch (QdrantException ex) when (ex.StatusCode == 409)
            {
                // Another process created it between our read and our create: check what it created.
            }

            info = await _http.SendAsync(HttpMethod.Get, path, null, "initialize", null, cancellationToken).ConfigureAwait(false);
        }

        using (info)
        {
            CheckExistingConfig(state, info!.RootElement.GetProperty("result"));
        }
    }

    private void CheckExistingConfig(CollectionState state, JsonElement result)
    {
        if (!result.TryGetProperty("config", out var config) || !config.TryGetProperty("params", out var parameters) || !parameters.TryGetProperty("vectors", out var vectors) || vectors.ValueKind != JsonValueKind.Object)
        {
            throw Permanent($"Qdrant collection '{state.QdrantName}' reports no vector configuration.", "initialize");
        }

        if (vectors.TryGetProperty("size", out _))
        {
            throw Permanent($"Qdrant collection '{state.QdrantName}' exists with a single unnamed vector; this store needs the named vector '{state.VectorName}' (size {state.Dimension}, {DistanceName(state.Distance)}). Use another collection or CollectionPrefix.", "initialize");
        }

        if (!vectors.TryGetProperty(state.VectorName, out var vector))
        {
            throw Permanent($"Qdrant collection '{state.QdrantName}' exists without the named vector '{state.VectorName}'.", "initialize");
        }

        var size = vector.TryGetProperty("size", out var s) && s.TryGetInt32(out var parsed) ? parsed : -1;
        var distance = vector.TryGetProperty("distance", out var d) ? d.GetString() : null;
        if (size != state.Dimension || !string.Equals(distance, DistanceName(state.Distance), StringComparison.Ordinal))
        {
            throw Permanent(
                $"Qdrant collection '{state.QdrantName}' exists with vector '{state.VectorName}' of size {size} and distance {distance}, but collection '{state.Collection}' is configured with size {state.Dimension} and distance {DistanceName(state.Distance)}. Use a new collection (re-embedding) instead of changing it in place.",
                "initialize");
        }
    }

    private async Task EnsureIndexesAsync(CollectionState state, CancellationToken cancellationToken)
    {
        // Creating an index that exists is accepted by Qdrant, so this is idempotent.
        (string Field, string Schema)[] indexes =
        [
            (SyncPayload.BucketPath, "integer"),
            (SyncPayload.VersionPath, "integer"),
            (SyncPayload.LivePath, "bool"),
            (SyncPayload.OriginPath, "keyword"),
        ];
        foreach (var (field, schema) in indexes)
        {
            var body = JsonBody.Write((field, schema), static (w, s) =>
            {
                w.WriteStartObject();
                w.WriteString("field_name", s.field);
                w.WriteString("field_schema", s.schema);
                w.WriteEndObject();
            });
            using var _ = await _http.SendAsync(HttpMethod.Put, $"collections/{state.QdrantName}/index?wait=true", body, "initialize", null, cancellationToken).ConfigureAwait(false);
        }
    }
}
