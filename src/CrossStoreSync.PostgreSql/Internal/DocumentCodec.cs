using CrossStoreSync.Errors;

using System.Buffers.Binary;
using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.PostgreSql.Internal;

/// <summary>
/// Column encodings of the PostgreSQL document store: the 16-byte content hash (big-endian, so byte order sorts like
/// the number) and the edge list as one <c>bytea</c>.
/// </summary>
/// <remarks>
/// Edge layout, little-endian: <c>u8 format (=1)</c>, <c>u32 count</c>, then per edge <c>u8 type length, type
/// (ASCII)</c>, <c>u8 collection length, collection (ASCII)</c>, <c>u16 id length, id (UTF-8)</c>, <c>u32 properties
/// length, properties (UTF-8 JSON, exact bytes)</c>. The lengths fit because edge types and collections are at most
/// 64 ASCII characters and ids at most <see cref="EntityKey.MaxIdBytes"/> bytes. Edges keep their order.
/// </remarks>
internal static class DocumentCodec
{
    private const byte EdgeFormat = 1;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static byte[] HashToBytes(UInt128 hash)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, hash);
        return bytes;
    }

    /// <exception cref="FormatException">The value is not 16 bytes.</exception>
    public static UInt128 BytesToHash(byte[] bytes) =>
        bytes.Length == 16 ? BinaryPrimitives.ReadUInt128BigEndian(bytes) : throw new FormatException($"Hash column holds {bytes.Length} bytes; expected 16.");

    /// <summary>Encodes the edges; null when there are none (the column is then NULL).</summary>
    public static byte[]? EncodeEdges(IReadOnlyList<SyncEdge> edges)
    {
        if (edges.Count == 0)
        {
            return null;
        }

        var length = 5L;
        foreach (var edge in edges)
        {
            length += 1 + edge.Type.Length + 1 + edge.Target.Collection.Length + 2 + Encoding.UTF8.GetByteCount(edge.Target.Id) + 4 + edge.Properties.Length;
        }

        var buffer = new byte[length];
        var span = buffer.AsSpan();
        span[0] = EdgeFormat;
        BinaryPrimitives.WriteUInt32LittleEndian(span[1..], (uint)edges.Count);
        var position = 5;
        foreach (var edge in edges)
        {
            position += WriteAscii(span[position..], edge.Type);
            position += WriteAscii(span[position..], edge.Target.Collection);
            var idLength = Encoding.UTF8.GetBytes(edge.Target.Id, span[(position + 2)..]);
            BinaryPrimitives.WriteUInt16LittleEndian(span[position..], checked((ushort)idLength));
            position += 2 + idLength;
            BinaryPrimitives.WriteUInt32LittleEndian(span[position..], (uint)edge.Properties.Length);
            edge.Properties.Span.CopyTo(span[(position + 4)..]);
            position += 4 + edge.Properties.Length;
        }

        return buffer;
    }

    /// <summary>Decodes edges written by <see cref="EncodeEdges"/>; an empty list for NULL.</summary>
    /// <exception cref="FormatException">The bytes are not a valid edge list (for example edited outside the library).</exception>
    public static SyncEdge[] DecodeEdges(byte[]? bytes)
    {
        if (bytes is null || bytes.Length == 0)
        {
            return [];
        }

        ReadOnlySpan<byte> span = bytes;
        if (span.Length < 5 || span[0] != EdgeFormat)
        {
            throw new FormatException($"Edge column of {bytes.Length} bytes does not start with format {EdgeFormat} and a count.");
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(span[1..]);
        if (count > (uint)(span.Length / 8))
        {
            throw new FormatException($"Edge column claims {count} edges in {bytes.Length} bytes.");
        }

        var edges = new SyncEdge[count];
        var position = 5;
        for (var i = 0; i < edges.Length; i++)
        {
            var type = ReadString(span, ref position, 1);
            var collection = ReadString(span, ref position, 1);
            var id = ReadString(span, ref position, 2);
            Need(span, position, 4);
            var propertiesLength = BinaryPrimitives.ReadUInt32LittleEndian(span[position..]);
            position += 4;
            Need(span, position, propertiesLength);
            var properties = span.Slice(position, (int)propertiesLength).ToArray();
            position += (int)propertiesLength;
            try
            {
                edges[i] = new SyncEdge(type, new EntityKey(collection, id), properties);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException($"Edge {i} in the edge column is not valid: {SafeText.Text(ex.Message)}", ex);
            }
        }

        if (position != span.Length)
        {
            throw new FormatException($"{span.Length - position} trailing bytes after {count} edges.");
        }

        return edges;
    }

    private static int WriteAscii(Span<byte> destination, string value)
    {
        destination[0] = checked((byte)value.Length);
        return 1 + Encoding.ASCII.GetBytes(value, destination[1..]);
    }

    private static string ReadString(ReadOnlySpan<byte> span, ref int position, int lengthBytes)
    {
        Need(span, position, (uint)lengthBytes);
        var length = lengthBytes == 1 ? span[position] : BinaryPrimitives.ReadUInt16LittleEndian(span[position..]);
        position += lengthBytes;
        Need(span, position, length);
        string value;
        try
        {
            value = StrictUtf8.GetString(span.Slice(position, length));
        }
        catch (DecoderFallbackException ex)
        {
            throw new FormatException($"Edge column holds invalid UTF-8 at byte {position}.", ex);
        }

        position += length;
        return value;
    }

    private static void Need(ReadOnlySpan<byte> span, int position, uint count)
    {
        if ((ulong)position + count > (ulong)span.Length)
        {
            throw new FormatException($"Edge column truncated at byte {position}.");
        }
    }
}
