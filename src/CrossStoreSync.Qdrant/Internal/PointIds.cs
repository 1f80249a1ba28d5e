using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// Maps entity ids to Qdrant point ids. Qdrant accepts only unsigned integers and UUIDs (PROTOCOLS.md §1.2), so an id
/// becomes the name-based UUID version 5 (RFC 9562 §5.5) of its UTF-8 bytes under a fixed namespace: deterministic, so
/// any process (or another tool) finds the same point, and the original id is kept in the payload.
/// </summary>
internal static class PointIds
{
    /// <summary>
    /// The namespace of CrossStoreSync point ids: itself the v5 UUID of <c>https://github.com/crossstoresync/point-ids</c>
    /// in the RFC's URL namespace, so e.g. Python's <c>uuid.uuid5(ns, id)</c> gives the same point ids. Never change it:
    /// every stored point id depends on it.
    /// </summary>
    public static readonly Guid Namespace = new("c807e3e0-4663-5708-87a1-0a461758c11f");

    /// <summary>The point id of an entity id, lowercase hyphenated as Qdrant returns it.</summary>
    public static string For(string id) => Create(Namespace, id).ToString("D");

    /// <summary>The point id of an entity id, as a gRPC <see cref="PointId"/>.</summary>
    public static PointId ToPointId(string id) => new() { Uuid = For(id) };

    /// <summary>Normalises an id Qdrant returned (any accepted UUID form) to the lowercase hyphenated form.</summary>
    public static string Normalize(string pointId) => Guid.TryParse(pointId, out var guid) ? guid.ToString("D") : pointId;

    /// <summary>The text form of a point id Qdrant returned: a normalised UUID, or the decimal number of a numeric id (never one of ours).</summary>
    public static string Text(PointId? id) => id?.PointIdOptionsCase switch
    {
        PointId.PointIdOptionsOneofCase.Uuid => Normalize(id.Uuid),
        PointId.PointIdOptionsOneofCase.Num => id.Num.ToString(CultureInfo.InvariantCulture),
        _ => string.Empty,
    };

    internal static Guid Create(Guid ns, string name)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[16 + nameBytes.Length];
        ns.TryWriteBytes(input, bigEndian: true, out _);
        nameBytes.CopyTo(input, 16);

        // SHA-1 is what RFC 9562 specifies for version 5; it names points, it protects nothing.
#pragma warning disable CA5350
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(input, hash);
#pragma warning restore CA5350
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash[..16], bigEndian: true);
    }

    /// <summary>The version nibble, for tests.</summary>
    internal static int VersionOf(Guid guid)
    {
        Span<byte> bytes = stackalloc byte[16];
        guid.TryWriteBytes(bytes, bigEndian: true, out _);
        return bytes[6] >> 4;
    }
}
