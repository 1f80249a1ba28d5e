using System.Globalization;
using CrossStoreSync.Qdrant.Fake.Api;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>TEST CODE — Qdrant's point ids: an unsigned integer or a UUID (any accepted form, stored lowercase hyphenated).</summary>
internal static class FakeIds
{
    /// <summary>The id's stored form; an absent or malformed id is refused with Qdrant's status and message.</summary>
    public static string Parse(PointId? id) => id?.PointIdOptionsCase switch
    {
        PointId.PointIdOptionsOneofCase.Num => id.Num.ToString(CultureInfo.InvariantCulture),
        PointId.PointIdOptionsOneofCase.Uuid when Guid.TryParse(id.Uuid, out var guid) => guid.ToString("D"),
        PointId.PointIdOptionsOneofCase.Uuid => throw new RpcException(new Status(StatusCode.InvalidArgument, $"Unable to parse UUID: {id.Uuid}")),
        _ => throw new RpcException(new Status(StatusCode.InvalidArgument, "Empty ID is not allowed")),
    };

    /// <summary>The stored form of an id in a filter, or an empty string for one that cannot match.</summary>
    public static string Text(PointId id) => id.PointIdOptionsCase switch
    {
        PointId.PointIdOptionsOneofCase.Num => id.Num.ToString(CultureInfo.InvariantCulture),
        PointId.PointIdOptionsOneofCase.Uuid when Guid.TryParse(id.Uuid, out var guid) => guid.ToString("D"),
        _ => string.Empty,
    };

    /// <summary>The wire form of a stored id.</summary>
    public static PointId ToPointId(string id) =>
        ulong.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var num) ? new PointId { Num = num } : new PointId { Uuid = id };
}
