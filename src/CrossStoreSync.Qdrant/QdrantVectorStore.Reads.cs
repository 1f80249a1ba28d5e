using System.Runtime.CompilerServices;
using System.Text.Json;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant;

/// <summary>Digest reads, counts, origin removal and search.</summary>
public sealed partial class QdrantVectorStore
{
    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        EntityKey.ValidateCollection(collection, nameof(collection));
        var result = new List<EntityDigest>(ids.Count);
        if (!_collections.TryGetValue(collection, out var state))
        {
            return result;
        }

        for (var start = 0; start < ids.Count; start += _options.BatchSize)
        {
            var end = Math.Min(ids.Count, start + _options.BatchSize);
            var body = JsonBody.Write((ids, start, end, state.VectorName), static (w, s) =>
            {
                w.WriteStartObject();
                w.WriteStartArray("ids");
                for (var i = s.start; i < s.end; i++)
                {
                    w.WriteStringValue(PointIds.For(s.ids[i]));
                }

                w.WriteEndArray();
                WriteSelectors(w, s.VectorName);
                w.WriteEndObject();
            });
            using var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points", body, "read digests", null, cancellationToken).ConfigureAwait(false);
            foreach (var element in response!.RootElement.GetProperty("result").EnumerateArray())
            {
                var record = QdrantRecord.Parse(element, state.VectorName);
                if (record.IsLive)
                {
                    result.Add(record.ToDigest(collection, state.Distance));
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Scrolls the live points of a collection whose bucket is in <paramref name="range"/>, one page of
    /// <see cref="QdrantVectorStoreOptions.BatchSize"/> at a time (ordered by point id, resumed from
    /// <c>next_page_offset</c>), so memory stays constant.
    /// </summary>
    public async IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        if (!_collections.TryGetValue(collection, out var state))
        {
            yield break;
        }

        string? offset = null;
        do
        {
            var body = JsonBody.Write((offset, range, state.VectorName, _options.BatchSize), static (w, s) =>
            {
                w.WriteStartObject();
                w.WriteNumber("limit", s.BatchSize);
                if (s.offset is not null)
                {
                    w.WriteString("offset", s.offset);
                }

                w.WriteStartObject("filter");
                w.WriteStartArray("must");
                w.WriteStartObject();
                w.WriteString("key", SyncPayload.BucketPath);
                w.WriteStartObject("range");
                w.WriteNumber("gte", s.range.First);
                w.WriteNumber("lte", s.range.Last);
                w.WriteEndObject();
                w.WriteEndObject();
                JsonBody.MatchCondition(w, SyncPayload.LivePath, true);
                w.WriteEndArray();
                w.WriteEndObject();
                WriteSelectors(w, s.VectorName);
                w.WriteEndObject();
            });
            var page = new List<EntityDigest>(_options.BatchSize);
            using (var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/scroll", body, "scan digests", null, cancellationToken).ConfigureAwait(false))
            {
                var result = response!.RootElement.GetProperty("result");
                foreach (var element in result.GetProperty("points").EnumerateArray())
                {
                    var record = QdrantRecord.Parse(element, state.VectorName);
                    if (record.IsLive && range.Contains(record.Bucket))
                    {
                        page.Add(record.ToDigest(collection, state.Distance));
                    }
                }

                offset = result.TryGetProperty("next_page_offset", out var next) && next.ValueKind != JsonValueKind.Null
                    ? next.ValueKind == JsonValueKind.String ? next.GetString() : next.GetRawText()
                    : null;
            }

            foreach (var digest in page)
            {
                yield return digest;
            }
        }
        while (offset is not null);
    }

    /// <inheritdoc />
    public async ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        if (!_collections.TryGetValue(collection, out var state))
        {
            return 0;
        }

        var body = JsonBody.Write(0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteStartObject("filter");
            w.WriteStartArray("must");
            JsonBody.MatchCondition(w, SyncPayload.LivePath, true);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteBoolean("exact", true);
            w.WriteEndObject();
        });
        return await CountAsync(state, body, "count", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Counts, then deletes (no tombstone) the points whose <c>_sync.origin</c> is <paramref name="origin"/>. A point
    /// overwritten between the count and the delete no longer carries the tag and is kept; the count then includes it.
    /// </summary>
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        if (!_collections.TryGetValue(collection, out var state))
        {
            return 0;
        }

        var filter = JsonBody.Write(origin, static (w, o) =>
        {
            w.WriteStartObject();
            w.WriteStartObject("filter");
            w.WriteStartArray("must");
            JsonBody.MatchCondition(w, SyncPayload.OriginPath, o);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        });
        var count = await CountAsync(state, filter, "remove by origin", cancellationToken).ConfigureAwait(false);
        if (count > 0)
        {
            using var _ = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/delete?wait=true", filter, "remove by origin", null, cancellationToken).ConfigureAwait(false);
        }

        return count;
    }

    private async Task<long> CountAsync(CollectionState state, ReadOnlyMemory<byte> body, string operation, CancellationToken cancellationToken)
    {
        using var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/count", body, operation, null, cancellationToken).ConfigureAwait(false);
        return response!.RootElement.GetProperty("result").GetProperty("count").GetInt64();
    }

    /// <summary>Searches with Qdrant's universal query endpoint (<c>POST /points/query</c>), over live points only.</summary>
    /// <exception cref="ArgumentException">The query's dimension differs from the collection's, or the collection has no vectors.</exception>
    /// <exception cref="QdrantException">Qdrant failed.</exception>
    public async ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (!_collections.TryGetValue(collection, out var state) || state.Dimension != query.Length)
        {
            throw new ArgumentException($"Query has dimension {query.Length}; collection '{collection}' in store '{Name}' expects {(state is null ? "no vectors (not configured)" : state.Dimension.ToString(System.Globalization.CultureInfo.InvariantCulture))}.", nameof(query));
        }

        var body = JsonBody.Write((query, limit, state.VectorName), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("query");
            foreach (var x in s.query.Span)
            {
                w.WriteNumberValue(x);
            }

            w.WriteEndArray();
            w.WriteString("using", s.VectorName);
            w.WriteNumber("limit", s.limit);
            w.WriteStartObject("filter");
            w.WriteStartArray("must");
            JsonBody.MatchCondition(w, SyncPayload.LivePath, true);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartArray("with_payload");
            w.WriteStringValue(SyncPayload.KeyPath);
            w.WriteEndArray();
            w.WriteBoolean("with_vector", false);
            w.WriteEndObject();
        });
        using var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/query", body, "search", null, cancellationToken).ConfigureAwait(false);
        var matches = new List<VectorMatch>(limit);
        foreach (var point in response!.RootElement.GetProperty("result").GetProperty("points").EnumerateArray())
        {
            if (point.TryGetProperty("payload", out var payload) && payload.TryGetProperty(SyncPayload.Root, out var sync)
                && sync.TryGetProperty(SyncPayload.Key, out var key) && key.ValueKind == JsonValueKind.String)
            {
                matches.Add(new VectorMatch(new EntityKey(collection, key.GetString()!), point.GetProperty("score").GetSingle()));
            }
        }

        return matches;
    }

    private static void WriteSelectors(Utf8JsonWriter w, string vectorName)
    {
        w.WriteStartArray("with_payload");
        w.WriteStringValue(SyncPayload.Root);
        w.WriteEndArray();
        w.WriteStartArray("with_vector");
        w.WriteStringValue(vectorName);
        w.WriteEndArray();
    }
}
