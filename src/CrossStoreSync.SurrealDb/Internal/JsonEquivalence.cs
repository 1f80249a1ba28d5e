using System.Text.Json;

namespace CrossStoreSync.SurrealDb.Internal;

/// <summary>
/// Compares two JSON values by meaning rather than text: object key order, whitespace and number spelling
/// (<c>2.50</c> vs <c>2.5</c>, <c>1.0</c> vs <c>1</c>) do not matter. Used to decide whether the document SurrealDB
/// holds is still the one the library wrote: SurrealDB sorts object keys and reprints numbers, so the exact bytes are
/// kept beside it and are only trusted while the stored value still means the same.
/// </summary>
internal static class JsonEquivalence
{
    public static bool Equivalent(JsonElement a, JsonElement b)
    {
        if (a.ValueKind != b.ValueKind)
        {
            return false;
        }

        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                return ObjectsEquivalent(a, b);
            case JsonValueKind.Array:
                if (a.GetArrayLength() != b.GetArrayLength())
                {
                    return false;
                }

                using (var ea = a.EnumerateArray())
                using (var eb = b.EnumerateArray())
                {
                    while (ea.MoveNext() && eb.MoveNext())
                    {
                        if (!Equivalent(ea.Current, eb.Current))
                        {
                            return false;
                        }
                    }
                }

                return true;
            case JsonValueKind.String:
                return a.ValueEquals(b.GetString());
            case JsonValueKind.Number:
                return NumbersEqual(a, b);
            default:
                return true; // true, false, null: equal kinds are equal values
        }
    }

    private static bool ObjectsEquivalent(JsonElement a, JsonElement b)
    {
        // Last occurrence wins for a duplicated key, as in SurrealDB's object literal.
        var left = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in a.EnumerateObject())
        {
            left[p.Name] = p.Value;
        }

        var right = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in b.EnumerateObject())
        {
            right[p.Name] = p.Value;
        }

        if (left.Count != right.Count)
        {
            return false;
        }

        foreach (var (name, value) in left)
        {
            if (!right.TryGetValue(name, out var other) || !Equivalent(value, other))
            {
                return false;
            }
        }

        return true;
    }

    private static bool NumbersEqual(JsonElement a, JsonElement b)
    {
        if (a.TryGetInt64(out var la) && b.TryGetInt64(out var lb))
        {
            return la == lb;
        }

        // SurrealDB keeps non-integers as 64-bit floats, so two spellings of the same double are the same value.
        return a.TryGetDouble(out var da) && b.TryGetDouble(out var db) && da.Equals(db);
    }
}
