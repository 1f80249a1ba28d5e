using CrossStoreSync.Errors;

using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrossStoreSync.Migration;

/// <summary>
/// A migration's durable state, as JSON checkpoints in the change log: one header, and one record per unit of work
/// (a bucket range of one collection) saved after every batch. Resuming reads them back.
/// </summary>
internal sealed class MigrationHeader
{
    public required string Id { get; set; }

    public required string Target { get; set; }

    public required string[] Collections { get; set; }

    public string? TargetCollection { get; set; }

    public string? TransformName { get; set; }

    public int Units { get; set; }

    public long StartLsn { get; set; }

    public long Total { get; set; }

    public MigrationPhase Phase { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public static string Name(string id) => $"migration/{id}";
}

/// <summary>One bucket range of one collection: where its scan stands and what it has done.</summary>
internal sealed class MigrationUnit
{
    public required string Collection { get; set; }

    public uint First { get; set; }

    public uint Last { get; set; }

    public string? After { get; set; }

    public bool Done { get; set; }

    public long Written { get; set; }

    public long Failed { get; set; }

    public static string Name(string id, int index) => $"migration/{id}/unit/{index:D4}";
}

[JsonSourceGenerationOptions(UseStringEnumConverter = true)]
[JsonSerializable(typeof(MigrationHeader))]
[JsonSerializable(typeof(MigrationUnit))]
[JsonSerializable(typeof(Sync.RouteState))]
[JsonSerializable(typeof(Retention.RebuildMark))]
internal sealed partial class MigrationJson : JsonSerializerContext
{
    public static string Write(MigrationHeader header) => JsonSerializer.Serialize(header, Default.MigrationHeader);

    public static string Write(MigrationUnit unit) => JsonSerializer.Serialize(unit, Default.MigrationUnit);

    public static string Write(Sync.RouteState route) => JsonSerializer.Serialize(route, Default.RouteState);

    public static string Write(Retention.RebuildMark mark) => JsonSerializer.Serialize(mark, Default.RebuildMark);

    public static Retention.RebuildMark ReadRebuildMark(string json, string name) =>
        JsonSerializer.Deserialize(json, Default.RebuildMark) ?? throw new InvalidDataException($"Checkpoint {SafeText.Quote(name)} is empty.");

    public static Sync.RouteState ReadRoute(string json, string name) =>
        JsonSerializer.Deserialize(json, Default.RouteState) ?? throw new InvalidDataException($"Checkpoint {SafeText.Quote(name)} is empty.");

    public static MigrationHeader ReadHeader(string json, string name) =>
        JsonSerializer.Deserialize(json, Default.MigrationHeader) ?? throw new InvalidDataException($"Checkpoint {SafeText.Quote(name)} is empty.");

    public static MigrationUnit ReadUnit(string json, string name) =>
        JsonSerializer.Deserialize(json, Default.MigrationUnit) ?? throw new InvalidDataException($"Checkpoint {SafeText.Quote(name)} is empty.");
}
