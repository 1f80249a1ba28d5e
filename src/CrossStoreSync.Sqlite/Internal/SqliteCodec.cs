using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Sqlite.Internal;

/// <summary>Column encodings shared by the SQLite stores: little-endian float32 vectors, 16-byte hashes, and an edge list blob.</summary>
internal static class SqliteCodec
{
    public static byte[]? VectorToBlob(ReadOnlyMemory<float> vector)
    {
        if (vector.IsEmpty)
        {
            return null;
        }

        var bytes = new byte[vector.Length * 4];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(vector.Span).CopyTo(bytes);
        }
        else
        {
            var span = vector.Span;
            for (var i = 0; i < span.Length; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), span[i]);
            }
        }

        return bytes;
    }

    public static float[] BlobToVector(byte[]? blob)
    {
        if (blob is null || blob.Length == 0)
        {
            return [];
        }

        if (blob.Length % 4 != 0)
        {
            throw new FormatException($"Vector blob of {blob.Length} bytes is not a whole number of float32 values.");
        }

        var vector = new float[blob.Length / 4];
        CopyLittleEndian(blob, vector);
        return vector;
    }

    private static void CopyLittleEndian(ReadOnlySpan<byte> bytes, float[] vector)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(bytes).CopyTo(vector);
            return;
        }

        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
        }
    }

    public static byte[] HashToBlob(UInt128 hash)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, hash);
        return bytes;
    }

    public static UInt128 BlobToHash(byte[] blob) =>
        blob.Length == 16 ? BinaryPrimitives.ReadUInt128BigEndian(blob) : throw new FormatException($"Hash blob has {blob.Length} bytes; expected 16.");

    /// <summary>Edges as <c>u32 count</c> then per edge <c>str type, str target collection, str target id, u32 length + properties</c>.</summary>
    public static byte[]? EdgesToBlob(IReadOnlyList<SyncEdge> edges)
    {
        if (edges.Count == 0)
        {
            return null;
        }

        using var stream = new MemoryStream();
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)edges.Count);
        stream.Write(u32);
        foreach (var edge in edges)
        {
            WriteStr(stream, edge.Type);
            WriteStr(stream, edge.Target.Collection);
            WriteStr(stream, edge.Target.Id);
            BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)edge.Properties.Length);
            stream.Write(u32);
            stream.Write(edge.Properties.Span);
        }

        return stream.ToArray();
    }

    public static SyncEdge[] BlobToEdges(byte[]? blob)
    {
        if (blob is null || blob.Length == 0)
        {
            return [];
        }

        var position = 0;
        var count = ReadU32(blob, ref position);
        if (count > (uint)blob.Length)
        {
            throw new FormatException($"Edge blob claims {count} edges in {blob.Length} bytes.");
        }

        var edges = new SyncEdge[count];
        for (var i = 0; i < edges.Length; i++)
        {
            var type = ReadStr(blob, ref position);
            var collection = ReadStr(blob, ref position);
            var id = ReadStr(blob, ref position);
            var length = (int)ReadU32(blob, ref position);
            Need(blob, position, length);
            var properties = blob.AsSpan(position, length).ToArray();
            position += length;
            edges[i] = new SyncEdge(type, EntityKey.Trusted(collection, id), properties);
        }

        return edges;
    }

    private static void WriteStr(MemoryStream stream, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)bytes.Length);
        stream.Write(u32);
        stream.Write(bytes);
    }

    private static uint ReadU32(byte[] blob, ref int position)
    {
        Need(blob, position, 4);
        var value = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(position));
        position += 4;
        return value;
    }

    private static string ReadStr(byte[] blob, ref int position)
    {
        var length = (int)ReadU32(blob, ref position);
        Need(blob, position, length);
        var value = Encoding.UTF8.GetString(blob, position, length);
        position += length;
        return value;
    }

    private static void Need(byte[] blob, int position, int count)
    {
        if (count < 0 || position + count > blob.Length)
        {
            throw new FormatException($"Edge blob truncated at byte {position}.");
        }
    }
}
