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

    /// <summary>
    /// Computes the checksum of a compensation record (<see cref="ICompensationLog"/>): <see cref="Compute"/> over the
    /// write's LSN and the prior state (kind, version, content hash, key, encoded entity), combined with the write's kind
    /// and version, so a prior state altered at rest is reported rather than restored.
    /// </summary>
    public static ulong ComputeCompensation(long lsn, ChangeKind kind, long version, ChangeKind priorKind, long priorVersion, ReadOnlySpan<byte> priorHash, string collection, string id, ReadOnlySpan<byte> priorPayload) =>
        Compute(lsn, priorKind, priorVersion, priorHash, collection, id, priorPayload) ^ unchecked((ulong)version * 0x9E3779B97F4A7C15UL) ^ ((ulong)kind << 56);
}
