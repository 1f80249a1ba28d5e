using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrossStoreSync.Qdrant.Tests.Fakes;

/// <summary>Evaluates the Qdrant filter subset the adapter sends (PROTOCOLS.md §1.5) against a point of the fake.</summary>
internal static class FakeQdrantFilter
{
    public static bool Matches(JsonElement filter, string pointId, JsonObject payload)
    {
        if (filter.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (filter.TryGetProperty("must", out var must) && must.ValueKind != JsonValueKind.Null && !Conditions(must).All(c => Condition(c, pointId, payload)))
        {
            return false;
        }

        if (filter.TryGetProperty("must_not", out var mustNot) && mustNot.ValueKind != JsonValueKind.Null && Conditions(mustNot).Any(c => Condition(c, pointId, payload)))
        {
            return false;
        }

        if (filter.TryGetProperty("should", out var should) && should.ValueKind != JsonValueKind.Null)
        {
            var list = Conditions(should).ToList();
            if (list.Count > 0 && !list.Any(c => Condition(c, pointId, payload)))
            {
                return false;
            }
        }

        return true;
    }

    private static IEnumerable<JsonElement> Conditions(JsonElement value) =>
        value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : [value];

    private static bool Condition(JsonElement condition, string pointId, JsonObject payload)
    {
        if (condition.TryGetProperty("has_id", out var ids))
        {
            return ids.EnumerateArray().Any(id => id.ValueKind == JsonValueKind.String && Guid.TryParse(id.GetString(), out var g) && g.ToString("D") == pointId);
        }

        if (condition.TryGetProperty("is_empty", out var isEmpty))
        {
            var node = Lookup(payload, isEmpty.GetProperty("key").GetString()!);
            return node is null || (node is JsonArray array && array.Count == 0);
        }

        if (condition.TryGetProperty("is_null", out var isNull))
        {
            var found = TryLookup(payload, isNull.GetProperty("key").GetString()!, out var node);
            return found && node is null;
        }

        if (condition.TryGetProperty("key", out var key))
        {
            var node = Lookup(payload, key.GetString()!);
            if (condition.TryGetProperty("match", out var match) && match.ValueKind != JsonValueKind.Null)
            {
                var expected = match.GetProperty("value");
                return Values(node).Any(v => Equal(v, expected));
            }

            if (condition.TryGetProperty("range", out var range) && range.ValueKind != JsonValueKind.Null)
            {
                return Values(node).Any(v => v is JsonValue value && value.TryGetValue<double>(out var d) && InRange(d, range));
            }

            throw new NotSupportedException("The fake supports match and range field conditions only: " + condition.GetRawText());
        }

        // A nested filter.
        return Matches(condition, pointId, payload);
    }

    private static bool InRange(double value, JsonElement range) =>
        (!range.TryGetProperty("gte", out var gte) || gte.ValueKind == JsonValueKind.Null || value >= gte.GetDouble())
        && (!range.TryGetProperty("gt", out var gt) || gt.ValueKind == JsonValueKind.Null || value > gt.GetDouble())
        && (!range.TryGetProperty("lte", out var lte) || lte.ValueKind == JsonValueKind.Null || value <= lte.GetDouble())
        && (!range.TryGetProperty("lt", out var lt) || lt.ValueKind == JsonValueKind.Null || value < lt.GetDouble());

    private static IEnumerable<JsonNode?> Values(JsonNode? node) => node is JsonArray array ? array : new[] { node };

    private static bool Equal(JsonNode? stored, JsonElement expected)
    {
        if (stored is not JsonValue value)
        {
            return false;
        }

        return expected.ValueKind switch
        {
            JsonValueKind.String => value.TryGetValue<string>(out var s) && s == expected.GetString(),
            JsonValueKind.True or JsonValueKind.False => value.TryGetValue<bool>(out var b) && b == expected.GetBoolean(),

            // Integers compare exactly as i64, as Qdrant's integer match does (no double rounding).
            JsonValueKind.Number => value.TryGetValue<long>(out var l) && expected.TryGetInt64(out var e) && l == e,
            _ => false,
        };
    }

    public static JsonNode? Lookup(JsonObject payload, string path) => TryLookup(payload, path, out var node) ? node : null;

    private static bool TryLookup(JsonObject payload, string path, out JsonNode? node)
    {
        node = payload;
        foreach (var part in path.Split('.'))
        {
            if (node is not JsonObject obj || !obj.TryGetPropertyValue(part, out node))
            {
                node = null;
                return false;
            }
        }

        return true;
    }
}
