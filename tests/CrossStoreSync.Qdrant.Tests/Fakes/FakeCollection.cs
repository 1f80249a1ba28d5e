using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrossStoreSync.Qdrant.Tests.Fakes;

/// <summary>TEST CODE — one collection of <see cref="FakeQdrantServer"/>: points ordered by id, named vectors, payload indexes.</summary>
internal sealed class FakeCollection(Dictionary<string, (int Size, string Distance)> vectors)
{
    private readonly Lock _lock = new();

    public Dictionary<string, (int Size, string Distance)> VectorConfig { get; } = vectors;

    /// <summary>Points by lowercase hyphenated UUID; ordinal order of that form is Qdrant's id order.</summary>
    public SortedDictionary<string, FakePoint> Points { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Indexes { get; } = new(StringComparer.Ordinal);

    public JsonNode Info()
    {
        lock (_lock)
        {
            JsonNode vectorsNode;
            if (VectorConfig.TryGetValue(string.Empty, out var single))
            {
                vectorsNode = new JsonObject { ["size"] = single.Size, ["distance"] = single.Distance };
            }
            else
            {
                var obj = new JsonObject();
                foreach (var (name, (size, distance)) in VectorConfig)
                {
                    obj[name] = new JsonObject { ["size"] = size, ["distance"] = distance };
                }

                vectorsNode = obj;
            }

            var schema = new JsonObject();
            foreach (var (field, type) in Indexes)
            {
                schema[field] = new JsonObject { ["data_type"] = JsonNode.Parse(type), ["points"] = Points.Count };
            }

            return new JsonObject
            {
                ["status"] = "green",
                ["optimizer_status"] = "ok",
                ["points_count"] = Points.Count,
                ["indexed_vectors_count"] = 0,
                ["segments_count"] = 1,
                ["config"] = new JsonObject
                {
                    ["params"] = new JsonObject { ["vectors"] = vectorsNode, ["shard_number"] = 1, ["replication_factor"] = 1 },
                    ["hnsw_config"] = new JsonObject { ["m"] = 16, ["ef_construct"] = 100, ["full_scan_threshold"] = 10000 },
                    ["optimizer_config"] = new JsonObject { ["default_segment_number"] = 0, ["flush_interval_sec"] = 5, ["deleted_threshold"] = 0.2, ["vacuum_min_vector_number"] = 1000 },
                },
                ["payload_schema"] = schema,
            };
        }
    }

    public void Upsert(JsonElement body)
    {
        var parsed = new List<FakePoint>();
        foreach (var point in body.GetProperty("points").EnumerateArray())
        {
            var id = PointId(point.GetProperty("id"));
            var vectors = new Dictionary<string, float[]>(StringComparer.Ordinal);
            var vector = point.GetProperty("vector");
            if (vector.ValueKind == JsonValueKind.Array)
            {
                vectors[string.Empty] = Floats(vector);
            }
            else
            {
                foreach (var named in vector.EnumerateObject())
                {
                    vectors[named.Name] = Floats(named.Value);
                }
            }

            foreach (var (name, values) in vectors)
            {
                if (!VectorConfig.TryGetValue(name, out var config))
                {
                    throw new FakeQdrantError(400, $"Wrong input: Not existing vector name error: {name}");
                }

                if (values.Length != config.Size)
                {
                    throw new FakeQdrantError(400, $"Wrong input: Vector dimension error: expected dim: {config.Size}, got {values.Length}");
                }

                if (config.Distance == "Cosine")
                {
                    Normalize(values);
                }
            }

            var payload = point.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.Object ? (JsonObject)JsonNode.Parse(p.GetRawText())! : [];
            parsed.Add(new FakePoint(id, vectors, payload));
        }

        var filter = body.TryGetProperty("update_filter", out var f) ? f : default;
        lock (_lock)
        {
            foreach (var point in parsed)
            {
                // update_filter guards existing points only; new points are inserted regardless.
                if (filter.ValueKind == JsonValueKind.Object && Points.TryGetValue(point.Id, out var existing) && !FakeQdrantFilter.Matches(filter, existing.Id, existing.Payload))
                {
                    continue;
                }

                Points[point.Id] = point;
            }
        }
    }

    public JsonNode Retrieve(JsonElement body)
    {
        var result = new JsonArray();
        lock (_lock)
        {
            foreach (var id in body.GetProperty("ids").EnumerateArray())
            {
                if (Points.TryGetValue(PointId(id), out var point))
                {
                    result.Add(Record(point, body));
                }
            }
        }

        return result;
    }

    public JsonNode Scroll(JsonElement body)
    {
        var limit = body.TryGetProperty("limit", out var l) && l.ValueKind == JsonValueKind.Number ? l.GetInt32() : 10;
        var offset = body.TryGetProperty("offset", out var o) && o.ValueKind != JsonValueKind.Null ? PointId(o) : null;
        var filter = body.TryGetProperty("filter", out var f) ? f : default;
        var points = new JsonArray();
        string? next = null;
        lock (_lock)
        {
            foreach (var (id, point) in Points)
            {
                if (offset is not null && string.CompareOrdinal(id, offset) < 0)
                {
                    continue;
                }

                if (filter.ValueKind == JsonValueKind.Object && !FakeQdrantFilter.Matches(filter, id, point.Payload))
                {
                    continue;
                }

                if (points.Count == limit)
                {
                    next = id;
                    break;
                }

                points.Add(Record(point, body));
            }
        }

        return new JsonObject { ["points"] = points, ["next_page_offset"] = next };
    }

    public JsonNode Count(JsonElement body)
    {
        var filter = body.TryGetProperty("filter", out var f) ? f : default;
        lock (_lock)
        {
            return new JsonObject { ["count"] = Points.Values.Count(p => filter.ValueKind != JsonValueKind.Object || FakeQdrantFilter.Matches(filter, p.Id, p.Payload)) };
        }
    }

    public JsonNode Query(JsonElement body)
    {
        var query = Floats(body.GetProperty("query"));
        var name = body.TryGetProperty("using", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString()! : string.Empty;
        if (!VectorConfig.TryGetValue(name, out var config))
        {
            throw new FakeQdrantError(400, $"Wrong input: Not existing vector name error: {name}");
        }

        if (query.Length != config.Size)
        {
            throw new FakeQdrantError(400, $"Wrong input: Vector dimension error: expected dim: {config.Size}, got {query.Length}");
        }

        if (config.Distance == "Cosine")
        {
            Normalize(query);
        }

        var limit = body.TryGetProperty("limit", out var l) ? l.GetInt32() : 10;
        var filter = body.TryGetProperty("filter", out var f) ? f : default;
        var result = new JsonArray();
        lock (_lock)
        {
            var scored = Points.Values
                .Where(p => p.Vectors.ContainsKey(name) && (filter.ValueKind != JsonValueKind.Object || FakeQdrantFilter.Matches(filter, p.Id, p.Payload)))
                .Select(p => (Point: p, Score: Dot(query, p.Vectors[name])))
                .OrderByDescending(x => x.Score)
                .Take(limit);
            foreach (var (point, score) in scored)
            {
                var record = (JsonObject)Record(point, body);
                record["version"] = 1;
                record["score"] = score;
                result.Add(record);
            }
        }

        return new JsonObject { ["points"] = result };
    }

    public void Delete(JsonElement body)
    {
        lock (_lock)
        {
            if (body.TryGetProperty("points", out var ids))
            {
                foreach (var id in ids.EnumerateArray())
                {
                    Points.Remove(PointId(id));
                }

                return;
            }

            var filter = body.GetProperty("filter");
            foreach (var id in Points.Where(p => FakeQdrantFilter.Matches(filter, p.Key, p.Value.Payload)).Select(p => p.Key).ToList())
            {
                Points.Remove(id);
            }
        }
    }

    private static JsonNode Record(FakePoint point, JsonElement body)
    {
        var record = new JsonObject { ["id"] = point.Id };
        var withPayload = body.TryGetProperty("with_payload", out var wp) ? wp : default;
        if (withPayload.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.True)
        {
            record["payload"] = point.Payload.DeepClone();
        }
        else if (withPayload.ValueKind == JsonValueKind.Array)
        {
            var selected = new JsonObject();
            foreach (var path in withPayload.EnumerateArray())
            {
                Copy(point.Payload, selected, path.GetString()!.Split('.'));
            }

            record["payload"] = selected;
        }

        var withVector = body.TryGetProperty("with_vector", out var wv) ? wv : default;
        if (withVector.ValueKind is JsonValueKind.True or JsonValueKind.Array)
        {
            var vectors = new JsonObject();
            foreach (var (name, values) in point.Vectors)
            {
                if (withVector.ValueKind == JsonValueKind.True || withVector.EnumerateArray().Any(n => n.GetString() == name))
                {
                    vectors[name] = new JsonArray(values.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());
                }
            }

            record["vector"] = vectors;
        }

        return record;
    }

    private static void Copy(JsonObject from, JsonObject to, string[] path)
    {
        if (!from.TryGetPropertyValue(path[0], out var node))
        {
            return;
        }

        if (path.Length == 1)
        {
            to[path[0]] = node?.DeepClone();
            return;
        }

        if (node is JsonObject child)
        {
            if (to[path[0]] is not JsonObject target)
            {
                to[path[0]] = target = [];
            }

            Copy(child, target, path[1..]);
        }
    }

    private static string PointId(JsonElement id)
    {
        if (id.ValueKind == JsonValueKind.Number)
        {
            return id.GetUInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return Guid.TryParse(id.GetString(), out var guid)
            ? guid.ToString("D")
            : throw new FakeQdrantError(400, $"Format error in JSON body: value {id.GetString()} is not a valid point ID, valid values are either an unsigned integer or a UUID");
    }

    private static float[] Floats(JsonElement array) => array.EnumerateArray().Select(x => x.GetSingle()).ToArray();

    private static float Dot(float[] a, float[] b)
    {
        var sum = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>Qdrant's cosine preprocessing: x / |x| unless |x| is below f32::EPSILON.</summary>
    private static void Normalize(float[] v)
    {
        var length = MathF.Sqrt(Dot(v, v));
        if (length < 1.1920929e-7f)
        {
            return;
        }

        for (var i = 0; i < v.Length; i++)
        {
            v[i] /= length;
        }
    }
}
