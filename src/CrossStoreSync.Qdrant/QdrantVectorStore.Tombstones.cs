using System.Text.Json;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant;

/// <summary>Tombstone purges (log retention).</summary>
public sealed partial class QdrantVectorStore
{
    // Qdrant's range conditions take a double; versions are 63-bit integers, which a double rounds to a multiple of up
    // to 2^10 here. Lowering the bound by more than that keeps a tombstone at the bound from ever matching (it costs
    // about a millisecond's worth of clock ticks of purging).
    private const long RangeRounding = 1 << 11;

    /// <inheritdoc />
    /// <remarks>
    /// Scrolls up to <paramref name="maxCount"/> tombstone points older than <paramref name="olderThan"/>, then deletes
    /// them with a filter that repeats the tombstone condition next to their ids, so a point overwritten by a newer
    /// upsert in between is kept. Returns the number of tombstones found.
    /// </remarks>
    public async ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        if (!_collections.TryGetValue(collection, out var state) || olderThan.Value <= RangeRounding)
        {
            return 0;
        }

        var below = olderThan.Value - RangeRounding;
        var scroll = JsonBody.Write((below, maxCount), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteNumber("limit", s.maxCount);
            WriteTombstoneFilter(w, s.below, null);
            w.WriteBoolean("with_payload", false);
            w.WriteBoolean("with_vector", false);
            w.WriteEndObject();
        });
        var ids = new List<string>();
        using (var response = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/scroll", scroll, "purge tombstones", null, cancellationToken).ConfigureAwait(false))
        {
            foreach (var point in response!.RootElement.GetProperty("result").GetProperty("points").EnumerateArray())
            {
                var id = point.GetProperty("id");
                ids.Add(id.ValueKind == JsonValueKind.String ? id.GetString()! : id.GetRawText());
            }
        }

        if (ids.Count > 0)
        {
            var delete = JsonBody.Write((below, ids), static (w, s) =>
            {
                w.WriteStartObject();
                WriteTombstoneFilter(w, s.below, s.ids);
                w.WriteEndObject();
            });
            using var _ = await _http.SendAsync(HttpMethod.Post, $"collections/{state.QdrantName}/points/delete?wait=true", delete, "purge tombstones", null, cancellationToken).ConfigureAwait(false);
        }

        return ids.Count;
    }

    /// <summary>Writes <c>"filter": {"must": [has_id?, _sync.deleted = true, _sync.version &lt; below]}</c>.</summary>
    private static void WriteTombstoneFilter(Utf8JsonWriter w, long below, List<string>? ids)
    {
        w.WriteStartObject("filter");
        w.WriteStartArray("must");
        if (ids is not null)
        {
            w.WriteStartObject();
            w.WriteStartArray("has_id");
            foreach (var id in ids)
            {
                w.WriteStringValue(id);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        JsonBody.MatchCondition(w, SyncPayload.Root + "." + SyncPayload.Deleted, true);
        w.WriteStartObject();
        w.WriteString("key", SyncPayload.VersionPath);
        w.WriteStartObject("range");
        w.WriteNumber("lt", below);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
