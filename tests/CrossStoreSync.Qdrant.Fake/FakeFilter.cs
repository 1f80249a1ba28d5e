using CrossStoreSync.Qdrant.Fake.Api;
using Google.Protobuf.Collections;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>
/// TEST CODE — evaluates Qdrant filters the way the server does for the subset the adapter sends: must / should /
/// must_not, nested filters, has_id, is_empty, is_null, and field conditions with keyword, integer or boolean match
/// (integers compared exactly as int64) or a range (compared as doubles, as Qdrant does). Anything else is refused, so
/// a request shape the fake does not understand fails the test instead of being half-answered.
/// </summary>
internal static class FakeFilter
{
    public static bool Matches(Filter? filter, string pointId, MapField<string, Value> payload)
    {
        if (filter is null)
        {
            return true;
        }

        if (filter.MinShould is not null)
        {
            throw Unsupported("min_should");
        }

        foreach (var condition in filter.Must)
        {
            if (!Condition(condition, pointId, payload))
            {
                return false;
            }
        }

        foreach (var condition in filter.MustNot)
        {
            if (Condition(condition, pointId, payload))
            {
                return false;
            }
        }

        if (filter.Should.Count == 0)
        {
            return true;
        }

        foreach (var condition in filter.Should)
        {
            if (Condition(condition, pointId, payload))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Condition(Condition condition, string pointId, MapField<string, Value> payload) => condition.ConditionOneOfCase switch
    {
        Api.Condition.ConditionOneOfOneofCase.Filter => Matches(condition.Filter, pointId, payload),
        Api.Condition.ConditionOneOfOneofCase.HasId => condition.HasId.HasId.Any(id => FakeIds.Text(id) == pointId),
        Api.Condition.ConditionOneOfOneofCase.IsEmpty => Lookup(payload, condition.IsEmpty.Key) is null or { KindCase: Value.KindOneofCase.NullValue } or { KindCase: Value.KindOneofCase.ListValue, ListValue.Values.Count: 0 },
        Api.Condition.ConditionOneOfOneofCase.IsNull => Lookup(payload, condition.IsNull.Key) is { KindCase: Value.KindOneofCase.NullValue },
        Api.Condition.ConditionOneOfOneofCase.Field => Field(condition.Field, payload),
        _ => throw Unsupported(condition.ConditionOneOfCase.ToString()),
    };

    private static bool Field(FieldCondition field, MapField<string, Value> payload)
    {
        var values = Values(Lookup(payload, field.Key));
        if (field.Match is { } match)
        {
            return match.MatchValueCase switch
            {
                Match.MatchValueOneofCase.Keyword => values.Any(v => v.KindCase == Value.KindOneofCase.StringValue && v.StringValue == match.Keyword),
                Match.MatchValueOneofCase.Integer => values.Any(v => v.KindCase == Value.KindOneofCase.IntegerValue && v.IntegerValue == match.Integer),
                Match.MatchValueOneofCase.Boolean => values.Any(v => v.KindCase == Value.KindOneofCase.BoolValue && v.BoolValue == match.Boolean),
                _ => throw Unsupported("match " + match.MatchValueCase),
            };
        }

        if (field.Range is { } range)
        {
            return values.Any(v => Number(v) is { } d
                && (!range.HasGte || d >= range.Gte) && (!range.HasGt || d > range.Gt)
                && (!range.HasLte || d <= range.Lte) && (!range.HasLt || d < range.Lt));
        }

        throw Unsupported("field condition on " + field.Key);
    }

    private static double? Number(Value value) => value.KindCase switch
    {
        Value.KindOneofCase.IntegerValue => value.IntegerValue,
        Value.KindOneofCase.DoubleValue => value.DoubleValue,
        _ => null,
    };

    private static IEnumerable<Value> Values(Value? value) => value switch
    {
        null => [],
        { KindCase: Value.KindOneofCase.ListValue } => value.ListValue.Values,
        _ => [value],
    };

    /// <summary>The value at a dotted path of the payload, or null when absent.</summary>
    public static Value? Lookup(MapField<string, Value> payload, string path)
    {
        var parts = path.Split('.');
        if (!payload.TryGetValue(parts[0], out var value))
        {
            return null;
        }

        foreach (var part in parts.AsSpan(1))
        {
            if (value.KindCase != Value.KindOneofCase.StructValue || !value.StructValue.Fields.TryGetValue(part, out value))
            {
                return null;
            }
        }

        return value;
    }

    private static RpcException Unsupported(string what) =>
        new(new Status(StatusCode.Unimplemented, $"The fake does not implement the filter part '{what}'."));
}
