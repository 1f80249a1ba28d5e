using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;

namespace CrossStoreSync.Log;

/// <summary>
/// The checksum every durable change log stores with each record, so a record altered or damaged at rest is reported
/// (<see cref="Errors.ChangeLogCorruptedException"/>) instead of dispatched: XXH64 over the LSN, kind, version
/// (little-endian), content hash, collection, 0x00, id, 0x00 and payload.
/// </summary>
public static class LogRecordChecksum
{
    /// <summary>Computes the checksum of one record.</summary>
    public static ulong Compute(long lsn, ChangeKind kind, long version, ReadOnlySpan<byte> hash, string collection, string id, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(collection);
        ArgumentNullException.ThrowIfNull(id);
        var length = 8 + 1 + 8 + hash.Length + Encoding.UTF8.GetByteCount(collection) + 1 + Encoding.UTF8.GetByteCount(id) + 1 + payload.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var span = rented.AsSpan(0, length);
            BinaryPrimitives.WriteInt64LittleEndian(span, lsn);
            span[8] = (byte)kind;
            BinaryPrimitives.WriteInt64LittleEndian(span[9..], version);
            hash.CopyTo(span[17..]);
            var position = 17 + hash.Length;
            position += Encoding.UTF8.GetBytes(collection, span[position..]);
            span[position++] = 0;
            position += Encoding.UTF8.GetBytes(id, span[position..]);
            span[position++] = 0;
            payload.CopyTo(span[position..]);
            return XxHash64.Hash(span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
