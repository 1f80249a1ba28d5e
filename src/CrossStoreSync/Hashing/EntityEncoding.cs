using CrossStoreSync.Errors;

using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Hashing;

/// <summary>Which parts of an entity an encoding covers.</summary>
[Flags]
public enum EncodingSections : byte
{
    /// <summary>The key only.</summary>
    None = 0,

    /// <summary>The JSON document.</summary>
    Document = 1,

    /// <summary>The vector.</summary>
    Vector = 2,

    /// <summary>The edges.</summary>
    Edges = 4,

    /// <summary>Everything: the canonical full encoding.</summary>
    All = Document | Vector | Edges,
}

/// <summary>
/// The canonical binary encoding of an entity. It is both the change log's payload format and the input of every
/// content hash, so it is specified exactly (docs/architecture.md, "Canonical encoding") and never depends on
/// process state. All integers are little-endian.
/// </summary>
/// <remarks>
/// Layout: <c>u8 format (=1)</c>, <c>u8 sections</c>, <c>str collection</c>, <c>str id</c>; then when the section is
/// present: <c>u32 length + document bytes</c>; <c>u32 count + count × f32</c>; <c>u32 count</c> and per edge
/// (sorted ordinally by type, target collection, target id, then properties bytes) <c>str type, str target
/// collection, str target id, u32 length + properties bytes</c>. <c>str</c> is <c>u32 byte length + UTF-8</c>.
/// Negative zero in a vector is written as positive zero so equal vectors hash equally.
/// </remarks>
public static class EntityEncoding
{
    /// <summary>The encoding's format byte.</summary>
    public const byte FormatVersion = 1;

    private const int StackThreshold = 1024;
    private const int SortStackLimit = 64;

    /// <summary>The number of bytes <see cref="Encode"/> writes.</summary>
    public static int GetEncodedLength(SyncEntity entity, EncodingSections sections = EncodingSections.All)
    {
        ArgumentNullException.ThrowIfNull(entity);
        long length = 2 + StrLength(entity.Key.Collection) + StrLength(entity.Key.Id);
        if ((sections & EncodingSections.Document) != 0)
        {
            length += 4 + entity.Document.Length;
        }

        if ((sections & EncodingSections.Vector) != 0)
        {
            length += 4 + ((long)entity.Vector.Length * 4);
        }

        if ((sections & EncodingSections.Edges) != 0)
        {
            length += 4;
            foreach (var edge in entity.Edges)
            {
                length += StrLength(edge.Type) + StrLength(edge.Target.Collection) + StrLength(edge.Target.Id) + 4 + edge.Properties.Length;
            }
        }

        return length > int.MaxValue - 64 ? throw new ArgumentException($"Entity {SafeText.Quote(entity.Key)} encodes to {length} bytes, which is too large.", nameof(entity)) : (int)length;
    }

    /// <summary>Writes the canonical encoding of <paramref name="entity"/> into <paramref name="destination"/>.</summary>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="GetEncodedLength"/>.</exception>
    public static int Encode(SyncEntity entity, Span<byte> destination, EncodingSections sections = EncodingSections.All)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var w = new Writer(destination);
        w.Byte(FormatVersion);
        w.Byte((byte)sections);
        w.Str(entity.Key.Collection);
        w.Str(entity.Key.Id);
        if ((sections & EncodingSections.Document) != 0)
        {
            w.Bytes(entity.Document.Span);
        }

        if ((sections & EncodingSections.Vector) != 0)
        {
            var vector = entity.Vector.Span;
            w.UInt32((uint)vector.Length);
            foreach (var f in vector)
            {
                // +0.0f turns -0.0f into +0.0f: equal vectors must encode equally.
                w.Single(f + 0.0f);
            }
        }

        if ((sections & EncodingSections.Edges) != 0)
        {
            WriteEdges(ref w, entity.Edges);
        }

        return w.Position;
    }

    /// <summary>Encodes into a new array (convenience for logs and tests; hot paths use <see cref="Encode"/>).</summary>
    public static byte[] EncodeToArray(SyncEntity entity, EncodingSections sections = EncodingSections.All)
    {
        var buffer = new byte[GetEncodedLength(entity, sections)];
        Encode(entity, buffer, sections);
        return buffer;
    }

    /// <summary>The 128-bit content hash of the full canonical encoding, recorded as <c>_sync.hash</c>.</summary>
    public static UInt128 ComputeContentHash(SyncEntity entity) => ComputeHash(entity, EncodingSections.All);

    /// <summary>The 128-bit <see cref="Hash128"/> of the encoding restricted to <paramref name="sections"/>.</summary>
    public static UInt128 ComputeHash(SyncEntity entity, EncodingSections sections)
    {
        var length = GetEncodedLength(entity, sections);
        byte[]? rented = null;
        var buffer = length <= StackThreshold ? stackalloc byte[StackThreshold] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            var written = Encode(entity, buffer, sections);
            return Hash128.Hash(buffer[..written]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Decodes a full encoding written by <see cref="Encode"/> with <see cref="EncodingSections.All"/>.</summary>
    /// <exception cref="FormatException">The bytes are not a valid full encoding.</exception>
    public static SyncEntity Decode(ReadOnlySpan<byte> source)
    {
        var r = new Reader(source);
        var format = r.Byte();
        if (format != FormatVersion)
        {
            throw new FormatException($"Unknown entity encoding format {format}; expected {FormatVersion}.");
        }

        var sections = (EncodingSections)r.Byte();
        if (sections != EncodingSections.All)
        {
            throw new FormatException($"Entity encoding has sections {sections}; only a full encoding can be decoded.");
        }

        var collection = r.Str();
        var id = r.Str();
        var document = r.Bytes();
        var count = r.UInt32();
        if (count > (uint)(r.Remaining / 4))
        {
            throw new FormatException($"Vector length {count} exceeds the remaining {r.Remaining} bytes.");
        }

        var vector = count == 0 ? [] : new float[count];
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = r.Single();
        }

        var edgeCount = r.UInt32();
        if (edgeCount > (uint)r.Remaining)
        {
            throw new FormatException($"Edge count {edgeCount} exceeds the remaining {r.Remaining} bytes.");
        }

        SyncEdge[]? edges = edgeCount == 0 ? null : new SyncEdge[edgeCount];
        for (var i = 0; i < edgeCount; i++)
        {
            var type = r.Str();
            var targetCollection = r.Str();
            var targetId = r.Str();
            var properties = r.Bytes();
            edges![i] = DecodeEdge(type, DecodeKey(targetCollection, targetId, "edge target"), properties, i);
        }

        if (r.Remaining != 0)
        {
            throw new FormatException($"{r.Remaining} trailing bytes after the entity encoding.");
        }

        return new SyncEntity(DecodeKey(collection, id, "key"), document, vector, edges);
    }

    // Bytes that decode to an invalid key or edge type are a malformed encoding, not a bad argument: Decode promises
    // FormatException for every bad input, so callers reading a log or a store can catch one exception type.
    private static EntityKey DecodeKey(string collection, string id, string what)
    {
        try
        {
            return new EntityKey(collection, id);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"Entity encoding holds an invalid {what}: {SafeText.Text(ex.Message)}", ex);
        }
    }

    private static SyncEdge DecodeEdge(string type, EntityKey target, byte[] properties, int index)
    {
        try
        {
            return new SyncEdge(type, target, properties);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"Entity encoding holds an invalid edge at index {index}: {SafeText.Text(ex.Message)}", ex);
        }
    }

    private static long StrLength(string value) => 4L + Encoding.UTF8.GetByteCount(value);

    private static void WriteEdges(ref Writer w, IReadOnlyList<SyncEdge> edges)
    {
        w.UInt32((uint)edges.Count);
        if (edges.Count == 0)
        {
            return;
        }

        int[]? rented = null;
        var order = edges.Count <= SortStackLimit ? stackalloc int[SortStackLimit] : (rented = ArrayPool<int>.Shared.Rent(edges.Count));
        order = order[..edges.Count];
        try
        {
            for (var i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            // Insertion sort: edge lists are short, and it needs no comparer allocation.
            for (var i = 1; i < order.Length; i++)
            {
                var current = order[i];
                var j = i - 1;
                while (j >= 0 && CompareEdges(edges[order[j]], edges[current]) > 0)
                {
                    order[j + 1] = order[j];
                    j--;
                }

                order[j + 1] = current;
            }

            foreach (var index in order)
            {
                var edge = edges[index];
                w.Str(edge.Type);
                w.Str(edge.Target.Collection);
                w.Str(edge.Target.Id);
                w.Bytes(edge.Properties.Span);
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<int>.Shared.Return(rented);
            }
        }
    }

    private static int CompareEdges(SyncEdge a, SyncEdge b)
    {
        var c = string.CompareOrdinal(a.Type, b.Type);
        if (c != 0)
        {
            return c;
        }

        c = a.Target.CompareTo(b.Target);
        return c != 0 ? c : a.Properties.Span.SequenceCompareTo(b.Properties.Span);
    }

    private ref struct Writer(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Position { get; private set; }

        public void Byte(byte value) => _destination[Position++] = value;

        public void UInt32(uint value)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_destination[Position..], value);
            Position += 4;
        }

        public void Single(float value)
        {
            BinaryPrimitives.WriteSingleLittleEndian(_destination[Position..], value);
            Position += 4;
        }

        public void Str(string value)
        {
            var written = Encoding.UTF8.GetBytes(value, _destination[(Position + 4)..]);
            UInt32((uint)written);
            Position += written;
        }

        public void Bytes(ReadOnlySpan<byte> value)
        {
            UInt32((uint)value.Length);
            value.CopyTo(_destination[Position..]);
            Position += value.Length;
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> source)
    {
        private readonly ReadOnlySpan<byte> _source = source;
        private int _position;

        public readonly int Remaining => _source.Length - _position;

        public byte Byte()
        {
            Need(1);
            return _source[_position++];
        }

        public uint UInt32()
        {
            Need(4);
            var value = BinaryPrimitives.ReadUInt32LittleEndian(_source[_position..]);
            _position += 4;
            return value;
        }

        public float Single()
        {
            Need(4);
            var value = BinaryPrimitives.ReadSingleLittleEndian(_source[_position..]);
            _position += 4;
            return value;
        }

        public string Str()
        {
            var length = UInt32();
            Need(length);
            var value = Encoding.UTF8.GetString(_source.Slice(_position, (int)length));
            _position += (int)length;
            return value;
        }

        public byte[] Bytes()
        {
            var length = UInt32();
            Need(length);
            var value = _source.Slice(_position, (int)length).ToArray();
            _position += (int)length;
            return value;
        }

        private readonly void Need(long count)
        {
            if (count > Remaining)
            {
                throw new FormatException($"Entity encoding truncated at byte {_position}: {count} more bytes needed, {Remaining} left.");
            }
        }
    }
}
