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

    /// <summary>
    /// For change-log implementations reading a stored compensation record back: checks its checksum (see
    /// <see cref="ComputeCompensation"/>) and decodes the prior state it keeps.
    /// </summary>
    /// <param name="lsn">The LSN of the write the record belongs to.</param>
    /// <param name="collection">The key's collection, as stored.</param>
    /// <param name="id">The key's id, as stored.</param>
    /// <param name="version">The write's version.</param>
    /// <param name="kind">The write's kind.</param>
    /// <param name="priorKind">The prior state's kind.</param>
    /// <param name="priorVersion">The prior state's version.</param>
    /// <param name="priorHash">The prior state's content hash as stored (16 bytes).</param>
    /// <param name="priorContentHash">The same hash decoded by the log's own codec.</param>
    /// <param name="priorPayload">The prior state's canonical entity encoding (null for a delete).</param>
    /// <param name="storedChecksum">The checksum stored with the record.</param>
    /// <returns>The prior state: a delete, or an upsert with its content.</returns>
    /// <exception cref="Errors.ChangeLogCorruptedException">The checksum does not match, an upsert has no content, or
    /// the content encodes another key.</exception>
    public static EntityChange VerifyCompensationPrior(
        long lsn,
        string collection,
        string id,
        long version,
        ChangeKind kind,
        ChangeKind priorKind,
        long priorVersion,
        byte[] priorHash,
        UInt128 priorContentHash,
        byte[]? priorPayload,
        ulong storedChecksum)
    {
        var actual = ComputeCompensation(lsn, kind, version, priorKind, priorVersion, priorHash, collection, id, priorPayload);
        if (storedChecksum != actual)
        {
            throw new Errors.ChangeLogCorruptedException(
                $"Compensation record of the write at LSN {lsn} ({Errors.SafeText.Quote(collection + "/" + id)}) fails its checksum: stored 0x{storedChecksum:X16}, computed 0x{actual:X16}. The prior state was altered or damaged.",
                lsn,
                "compensation");
        }

        var key = new EntityKey(collection, id);
        if (priorKind == ChangeKind.Delete)
        {
            return EntityChange.Delete(key, new HlcTimestamp(priorVersion));
        }

        var entity = EntityEncoding.Decode(priorPayload ?? throw new Errors.ChangeLogCorruptedException($"Compensation record of the write at LSN {lsn} has an upsert prior state without its content.", lsn, "compensation"));
        if (entity.Key != key)
        {
            throw new Errors.ChangeLogCorruptedException($"Compensation record of the write at LSN {lsn} is for {Errors.SafeText.Quote(key)} but its prior state encodes {Errors.SafeText.Quote(entity.Key)}.", lsn, "compensation");
        }

        return EntityChange.Upsert(entity, new HlcTimestamp(priorVersion), priorContentHash);
    }
}
