using CrossStoreSync.Qdrant.Fake.Api;
using Google.Protobuf.Collections;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>TEST CODE — a point of the fake: named vectors (the unnamed one under "") and a payload, as Qdrant keeps them.</summary>
public sealed class FakePoint(string id, Dictionary<string, float[]> vectors, MapField<string, Value> payload)
{
    /// <summary>The id, lowercase hyphenated UUID (or decimal for numeric ids).</summary>
    public string Id { get; } = id;

    /// <summary>The stored vectors (cosine ones normalised), by name; tests may replace them to edit data behind the library's back.</summary>
    public Dictionary<string, float[]> Vectors { get; set; } = vectors;

    /// <summary>The payload; tests may edit it.</summary>
    public MapField<string, Value> Payload { get; set; } = payload;

    /// <summary>A field of the <c>_sync</c> payload object, or null.</summary>
    public Value? Sync(string field) =>
        Payload.TryGetValue("_sync", out var sync) && sync.KindCase == Value.KindOneofCase.StructValue && sync.StructValue.Fields.TryGetValue(field, out var value) ? value : null;

    /// <summary>Sets a field of the <c>_sync</c> payload object, as another program editing the payload would.</summary>
    public void SetSync(string field, Value value) => Payload["_sync"].StructValue.Fields[field] = value;
}
