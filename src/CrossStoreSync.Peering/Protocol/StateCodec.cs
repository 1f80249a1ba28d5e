using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Peering.Protocol;

/// <summary>
/// The binary encodings of frame bodies (docs/peering.md): states (<c>i64 lsn, u8 kind, i64 version, history,
/// then for an upsert u32 length + canonical entity encoding + 16-byte content hash, for a delete the key</c>), state
/// digests and Merkle leaves. Decoding checks every length against what remains, so a malformed body is refused
/// instead of read past its end.
/// </summary>
internal static class StateCodec
{
    /// <summary>
    /// The end (exclusive) of the chunk that starts at <paramref name="start"/>: as many states as fit in
    /// <paramref name="maxBytes"/>, and at least one (a state larger than the bound travels alone).
    /// </summary>
    public static int ChunkEnd(IReadOnlyList<ReplicatedState> states, int start, int maxBytes, out int bytes)
    {
        bytes = 0;
        var end = start;
        while (end < states.Count)
        {
            var size = SizeOf(states[end]);
            if (end > start && bytes + size > maxBytes)
            {
                break;
            }

            bytes += size;
            end++;
        }

        return end;
    }

    /// <summary>Encodes <paramref name="count"/> states into exactly the <paramref name="destination"/> their sizes add up to.</summary>
    public static void EncodeStates(IReadOnlyList<ReplicatedState> states, int start, int count, Span<byte> destination)
    {
        var at = 0;
        for (var i = start; i < start + count; i++)
        {
            at += WriteState(destination[at..], states[i]);
        }

        if (at != destination.Length)
        {
            throw new InvalidOperationException($"The states encoded to {at} bytes where their sizes add up to {destination.Length}.");
        }
    }

    /// <summary>The encoded size of one state, for chunking by bytes.</summary>
    public static int SizeOf(ReplicatedState state) =>
        8 + 1 + 8 + state.History.EncodedLength + (state.Change.Entity is { } entity
            ? 4 + EntityEncoding.GetEncodedLength(entity) + 16
            : 8 + Encoding.UTF8.GetByteCount(state.Change.Key.Collection) + Encoding.UTF8.GetByteCount(state.Change.Key.Id));

    private static int WriteState(Span<byte> span, ReplicatedState state)
    {
        var change = state.Change;
        BinaryPrimitives.WriteInt64LittleEndian(span, state.Lsn);
        span[8] = (byte)change.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(span[9..], change.Version.Value);
        var at = 17 + state.History.WriteTo(span[17..]);
        if (change.Entity is { } entity)
        {
            var length = EntityEncoding.GetEncodedLength(entity);
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], length);
            EntityEncoding.Encode(entity, span.Slice(at + 4, length));
            BinaryPrimitives.WriteUInt128LittleEndian(span[(at + 4 + length)..], change.ContentHash);
            return at + 4 + length + 16;
        }

        at += WriteString(span[at..], change.Key.Collection);
        return at + WriteString(span[at..], change.Key.Id);
    }

    public static List<ReplicatedState> DecodeStates(ReadOnlySpan<byte> body, int count)
    {
        var result = new List<ReplicatedState>(count);
        var reader = new Reader(body);
        for (var i = 0; i < count; i++)
        {
            var lsn = reader.Int64();
            var kind = (ChangeKind)reader.Byte();
            var version = reader.Int64();
            if (version <= 0)
            {
                throw Malformed($"state {i} has version {version}");
            }

            reader.Vector(out var history);
            EntityChange change;
            switch (kind)
            {
                case ChangeKind.Upsert:
                    var entity = EntityEncoding.Decode(reader.Bytes(reader.Int32()));
                    change = EntityChange.Upsert(entity, new HlcTimestamp(version), reader.UInt128());
                    break;
                case ChangeKind.Delete:
                    change = EntityChange.Delete(new EntityKey(reader.String(), reader.String()), new HlcTimestamp(version));
                    break;
                default:
                    throw Malformed($"state {i} has the unknown kind {(int)kind}");
            }

            result.Add(new ReplicatedState(lsn, change, history));
        }

        reader.End();
        return result;
    }

    public static byte[] EncodeDigests(IReadOnlyList<StateDigest> digests)
    {
        var writer = new ArrayBufferWriter<byte>(Math.Max(256, digests.Count * 48));
        foreach (var digest in digests)
        {
            WriteString(writer, digest.Id);
            var span = writer.GetSpan(25);
            BinaryPrimitives.WriteInt64LittleEndian(span, digest.Version.Value);
            BinaryPrimitives.WriteUInt128LittleEndian(span[8..], digest.ContentHash);
            span[24] = digest.Deleted ? (byte)1 : (byte)0;
            writer.Advance(25);
        }

        return writer.WrittenSpan.ToArray();
    }

    public static List<StateDigest> DecodeDigests(ReadOnlySpan<byte> body, int count)
    {
        var result = new List<StateDigest>(count);
        var reader = new Reader(body);
        for (var i = 0; i < count; i++)
        {
            var id = reader.String();
            var version = reader.Int64();
            var hash = reader.UInt128();
            result.Add(new StateDigest(id, new HlcTimestamp(Math.Max(0, version)), hash, reader.Byte() != 0));
        }

        reader.End();
        return result;
    }

    public static byte[] EncodeLeaves(ReadOnlySpan<UInt128> leaves)
    {
        var body = new byte[leaves.Length * 16];
        for (var i = 0; i < leaves.Length; i++)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(body.AsSpan(i * 16), leaves[i]);
        }

        return body;
    }

    public static UInt128[] DecodeLeaves(ReadOnlySpan<byte> body, int count)
    {
        if (body.Length != count * 16)
        {
            throw Malformed($"{count} Merkle leaves need {count * 16} bytes, the body has {body.Length}");
        }

        var leaves = new UInt128[count];
        for (var i = 0; i < count; i++)
        {
            leaves[i] = BinaryPrimitives.ReadUInt128LittleEndian(body[(i * 16)..]);
        }

        return leaves;
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        var span = writer.GetSpan(4 + Encoding.UTF8.GetByteCount(value));
        writer.Advance(WriteString(span, value));
    }

    private static int WriteString(Span<byte> span, string value)
    {
        var length = Encoding.UTF8.GetBytes(value, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, length);
        return 4 + length;
    }

    private static PeerProtocolException Malformed(string what) => new($"A frame body is malformed: {what}.", PeerErrorCode.Malformed);

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public byte Byte() => Take(1)[0];

        public int Int32()
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
            return value >= 0 ? value : throw Malformed($"a length of {value}");
        }

        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

        public UInt128 UInt128() => BinaryPrimitives.ReadUInt128LittleEndian(Take(16));

        public ReadOnlySpan<byte> Bytes(int length) => Take(length);

        public string String() => Encoding.UTF8.GetString(Take(Int32()));

        public void Vector(out VersionVector vector) => _at += VersionVector.Read(_data[_at..], out vector);

        public readonly void End()
        {
            if (_at != _data.Length)
            {
                throw Malformed($"{_data.Length - _at} bytes remain after the declared items");
            }
        }

        private ReadOnlySpan<byte> Take(int length)
        {
            if (length > _data.Length - _at)
            {
                throw Malformed($"an item needs {length} bytes at offset {_at}, {_data.Length - _at} remain");
            }

            var slice = _data.Slice(_at, length);
            _at += length;
            return slice;
        }
    }
}
