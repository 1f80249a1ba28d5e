using System.Buffers;
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Internal;

namespace CrossStoreSync.Benchmarks.Baselines;

/// <summary>
/// The JSON bodies the REST Qdrant adapter sent and received before issue 14 moved it to gRPC, written the way that
/// adapter wrote them (Utf8JsonWriter, same fields), kept only as the "before" of <see cref="QdrantMessageSizeBenchmarks"/>.
/// </summary>
internal static class RestJsonBodies
{
    /// <summary><c>PUT /collections/{c}/points?wait=true</c>: the points with their <c>_sync</c> payload and the version guard's <c>update_filter</c>.</summary>
    public static int Upsert(IReadOnlyList<EntityChange> changes, string vectorName, IReadOnlyDictionary<string, long?> stored)
    {
        var buffer = new ArrayBufferWriter<byte>(256 * 1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("points");
            foreach (var change in changes)
            {
                var vector = change.Entity!.Vector.Span;
                w.WriteStartObject();
                w.WriteString("id", PointIds.For(change.Key.Id));
                w.WriteStartObject("vector");
                w.WriteStartArray(vectorName);
                foreach (var x in vector)
                {
                    w.WriteNumberValue(x);
                }

                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteStartObject("payload");
                WriteSync(w, change.Key, change.Version.Value, change.ContentHash, live: true, change.Origin, QdrantRecord.EncodeVector(vector));
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("update_filter");
            w.WriteStartArray("should");
            foreach (var change in changes)
            {
                var id = PointIds.For(change.Key.Id);
                w.WriteStartObject();
                w.WriteStartArray("must");
                w.WriteStartObject();
                w.WriteStartArray("has_id");
                w.WriteStringValue(id);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteStartObject();
                if (stored.GetValueOrDefault(id) is { } version)
                {
                    w.WriteString("key", "_sync.version");
                    w.WriteStartObject("match");
                    w.WriteNumber("value", version);
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteStartObject("is_empty");
                    w.WriteString("key", "_sync.version");
                    w.WriteEndObject();
                }

                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return buffer.WrittenCount;
    }

    /// <summary>The answer to <c>POST /collections/{c}/points/scroll</c>: a page of points with <c>_sync</c> and the named vector, in Qdrant's envelope.</summary>
    public static int ScrollPage(IReadOnlyList<EntityChange> changes, string vectorName, string nextOffset)
    {
        var buffer = new ArrayBufferWriter<byte>(256 * 1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("result");
            w.WriteStartArray("points");
            foreach (var change in changes)
            {
                // Qdrant answers cosine vectors normalised; the value written here has the same size in JSON.
                var vector = change.Entity!.Vector.Span;
                w.WriteStartObject();
                w.WriteString("id", PointIds.For(change.Key.Id));
                w.WriteStartObject("payload");
                WriteSync(w, change.Key, change.Version.Value, change.ContentHash, live: true, change.Origin, QdrantRecord.EncodeVector(vector));
                w.WriteEndObject();
                w.WriteStartObject("vector");
                w.WriteStartArray(vectorName);
                foreach (var x in vector)
                {
                    w.WriteNumberValue(x);
                }

                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("next_page_offset", nextOffset);
            w.WriteEndObject();
            w.WriteString("status", "ok");
            w.WriteNumber("time", 0.000125);
            w.WriteEndObject();
        }

        return buffer.WrittenCount;
    }

    private static void WriteSync(Utf8JsonWriter w, EntityKey key, long version, UInt128 hash, bool live, string? origin, string raw)
    {
        w.WriteStartObject("_sync");
        w.WriteString("key", key.Id);
        w.WriteNumber("version", version);
        w.WriteString("hash", hash.ToString("x32", CultureInfo.InvariantCulture));
        w.WriteNumber("bucket", KeyHash.Bucket(key));
        w.WriteBoolean("live", live);
        w.WriteBoolean("deleted", false);
        if (origin is null)
        {
            w.WriteNull("origin");
        }
        else
        {
            w.WriteString("origin", origin);
        }

        w.WriteString("raw", raw);
        w.WriteEndObject();
    }
}
