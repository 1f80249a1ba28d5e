using CrossStoreSync.Errors;

using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace CrossStoreSync.Model;

/// <summary>How two states of one entity relate causally.</summary>
public enum CausalOrder
{
    /// <summary>Both are the same event (the same version).</summary>
    Same = 0,

    /// <summary>The first state has seen the second: the first supersedes it.</summary>
    Supersedes = 1,

    /// <summary>The second state has seen the first: the first is superseded.</summary>
    SupersededBy = 2,

    /// <summary>Neither has seen the other: the two were written concurrently on different nodes.</summary>
    Concurrent = 3,
}

/// <summary>
/// The causal history of one entity's state across nodes: for each node, the newest version written by that node that
/// the state has seen (node → <see cref="HlcTimestamp"/>). Every entry is a timestamp whose <see cref="HlcTimestamp.NodeId"/>
/// names its node, so the vector is a set of timestamps with distinct node ids, kept sorted by node id.
/// </summary>
/// <remarks>
/// <para>
/// A state's own version is always in its history (<see cref="Covers"/> of it is true) and is its newest entry. Whether
/// one state supersedes another is decided by the other's own version (its "dot"): a state has seen another exactly
/// when its history covers the other's version (<see cref="Compare"/>). That is the dotted-version-vector rule: after two
/// concurrent states are reconciled and the loser is discarded, a later write that saw the winner supersedes it, even if
/// it never saw the loser.
/// </para>
/// <para>Immutable and thread-safe. <c>default</c> is the empty history.</para>
/// </remarks>
public readonly struct VersionVector : IEquatable<VersionVector>
{
    /// <summary>The most entries a vector may hold (one per node id).</summary>
    public const int MaxEntries = HlcTimestamp.MaxNodeId + 1;

    private readonly long[]? _entries; // sorted by node id, distinct node ids, positive values

    private VersionVector(long[] entries) => _entries = entries;

    /// <summary>The empty history.</summary>
    public static VersionVector Empty => default;

    /// <summary>The number of nodes in the history.</summary>
    public int Count => _entries?.Length ?? 0;

    /// <summary>True when no node is in the history.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>The entries, sorted by node id.</summary>
    public ReadOnlySpan<long> Entries => _entries;

    /// <summary>The newest version of <paramref name="nodeId"/> in the history, or <see cref="HlcTimestamp.Zero"/>.</summary>
    public HlcTimestamp this[int nodeId]
    {
        get
        {
            var index = IndexOf(nodeId);
            return index >= 0 ? new HlcTimestamp(_entries![index]) : HlcTimestamp.Zero;
        }
    }

    /// <summary>The history of a state written with no history before it: just its own version.</summary>
    public static VersionVector Of(HlcTimestamp version) => version == HlcTimestamp.Zero ? Empty : new VersionVector([version.Value]);

    /// <summary>True when the history has seen <paramref name="version"/>: its node's entry is at least that version.</summary>
    public bool Covers(HlcTimestamp version) => this[version.NodeId] >= version;

    /// <summary>Returns this history with <paramref name="version"/> added (its node's entry raised to it when newer).</summary>
    public VersionVector With(HlcTimestamp version)
    {
        if (version == HlcTimestamp.Zero || Covers(version))
        {
            return this;
        }

        var entries = _entries ?? [];
        var index = IndexOf(version.NodeId);
        if (index >= 0)
        {
            var copy = (long[])entries.Clone();
            copy[index] = version.Value;
            return new VersionVector(copy);
        }

        var insertAt = ~index;
        var grown = new long[entries.Length + 1];
        entries.AsSpan(0, insertAt).CopyTo(grown);
        grown[insertAt] = version.Value;
        entries.AsSpan(insertAt).CopyTo(grown.AsSpan(insertAt + 1));
        return new VersionVector(grown);
    }

    /// <summary>The union of two histories: per node, the newer entry.</summary>
    public VersionVector Merge(VersionVector other)
    {
        if (other.IsEmpty || Dominates(other))
        {
            return this;
        }

        if (IsEmpty || other.Dominates(this))
        {
            return other;
        }

        var a = _entries!;
        var b = other._entries!;
        var merged = new List<long>(a.Length + b.Length);
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            if (j >= b.Length || (i < a.Length && NodeOf(a[i]) < NodeOf(b[j])))
            {
                merged.Add(a[i++]);
            }
            else if (i >= a.Length || NodeOf(b[j]) < NodeOf(a[i]))
            {
                merged.Add(b[j++]);
            }
            else
            {
                merged.Add(Math.Max(a[i++], b[j++]));
            }
        }

        return new VersionVector([.. merged]);
    }

    /// <summary>True when this history has seen every entry of <paramref name="other"/>.</summary>
    public bool Dominates(VersionVector other)
    {
        foreach (var entry in other.Entries)
        {
            if (!Covers(new HlcTimestamp(entry)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Compares two states by their versions (dots) and histories: <see cref="CausalOrder.Supersedes"/> when the first
    /// has seen the second's version and not the other way round, <see cref="CausalOrder.Concurrent"/> when neither has.
    /// </summary>
    /// <param name="version">The first state's version.</param>
    /// <param name="history">The first state's history (covers <paramref name="version"/>).</param>
    /// <param name="otherVersion">The second state's version.</param>
    /// <param name="otherHistory">The second state's history.</param>
    public static CausalOrder Compare(HlcTimestamp version, VersionVector history, HlcTimestamp otherVersion, VersionVector otherHistory)
    {
        if (version == otherVersion)
        {
            return CausalOrder.Same;
        }

        var seenOther = history.Covers(otherVersion);
        var otherSeen = otherHistory.Covers(version);
        return (seenOther, otherSeen) switch
        {
            (true, false) => CausalOrder.Supersedes,
            (false, true) => CausalOrder.SupersededBy,

            // Both covering each other's distinct dots cannot arise from real histories (each dot is newer than
            // everything its writer had seen); treat it as the conflict it would be, so nothing is silently dropped.
            _ => CausalOrder.Concurrent,
        };
    }

    /// <summary>Writes the compact JSON form stored next to a document: <c>{"node":version,...}</c>; null when empty.</summary>
    public string? ToJson()
    {
        if (IsEmpty)
        {
            return null;
        }

        var text = new StringBuilder(Count * 24).Append('{');
        for (var i = 0; i < _entries!.Length; i++)
        {
            var entry = new HlcTimestamp(_entries[i]);
            text.Append(i == 0 ? "\"" : ",\"").Append(entry.NodeId.ToString(CultureInfo.InvariantCulture)).Append("\":").Append(entry.Value.ToString(CultureInfo.InvariantCulture));
        }

        return text.Append('}').ToString();
    }

    /// <summary>Parses the JSON form written by <see cref="ToJson"/> or by the stores' SQL (null or empty is the empty history).</summary>
    /// <exception cref="FormatException">The text is not such an object, or a value's node id differs from its key.</exception>
    public static VersionVector ParseJson(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return Empty;
        }

        using var document = System.Text.Json.JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            throw new FormatException($"A version vector must be a JSON object of node → version, not {SafeText.Quote(json)}.");
        }

        var result = Empty;
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!int.TryParse(property.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var node) || !property.Value.TryGetInt64(out var value) || value <= 0)
            {
                throw new FormatException($"Version vector entry {SafeText.Quote(property.Name)}: {SafeText.Quote(property.Value.GetRawText(), 64)} is not a node id with a positive version.");
            }

            var version = new HlcTimestamp(value);
            if (version.NodeId != node)
            {
                throw new FormatException($"Version vector entry for node {node} holds version {version}, which belongs to node {version.NodeId}.");
            }

            result = result.With(version);
        }

        return result;
    }

    /// <summary>The size of <see cref="WriteTo"/>'s output.</summary>
    public int EncodedLength => 2 + (Count * 8);

    /// <summary>Writes <c>u16 count</c> then <c>count × i64</c> (little-endian), sorted by node id; returns the bytes written.</summary>
    public int WriteTo(Span<byte> destination)
    {
        var count = Count;
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)count);
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(destination[(2 + (i * 8))..], _entries![i]);
        }

        return EncodedLength;
    }

    /// <summary>Reads what <see cref="WriteTo"/> wrote; returns the bytes consumed.</summary>
    /// <exception cref="FormatException">The bytes are truncated, unsorted, repeat a node or hold a non-positive version.</exception>
    public static int Read(ReadOnlySpan<byte> source, out VersionVector vector)
    {
        if (source.Length < 2)
        {
            throw new FormatException("A version vector is truncated: its count is missing.");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(source);
        if (count > MaxEntries || source.Length < 2 + (count * 8))
        {
            throw new FormatException($"A version vector of {count} entries needs {2 + (count * 8)} bytes (at most {MaxEntries} entries); {source.Length} remain.");
        }

        var entries = count == 0 ? null : new long[count];
        for (var i = 0; i < count; i++)
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(source[(2 + (i * 8))..]);
            if (value <= 0 || (i > 0 && NodeOf(value) <= NodeOf(entries![i - 1])))
            {
                throw new FormatException($"Version vector entry {i} ({value}) is not positive or not in ascending node order.");
            }

            entries![i] = value;
        }

        vector = entries is null ? Empty : new VersionVector(entries);
        return 2 + (count * 8);
    }

    /// <inheritdoc />
    public bool Equals(VersionVector other) => Entries.SequenceEqual(other.Entries);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is VersionVector other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var entry in Entries)
        {
            hash.Add(entry);
        }

        return hash.ToHashCode();
    }

    /// <summary>Equality operator.</summary>
    public static bool operator ==(VersionVector left, VersionVector right) => left.Equals(right);

    /// <summary>Inequality operator.</summary>
    public static bool operator !=(VersionVector left, VersionVector right) => !left.Equals(right);

    /// <summary>Returns <c>[ms.counter@node, ...]</c>.</summary>
    public override string ToString()
    {
        var text = new StringBuilder("[");
        foreach (var entry in Entries)
        {
            text.Append(text.Length == 1 ? string.Empty : ", ").Append(new HlcTimestamp(entry).ToString());
        }

        return text.Append(']').ToString();
    }

    private int IndexOf(int nodeId)
    {
        var entries = _entries;
        if (entries is null)
        {
            return ~0;
        }

        int lo = 0, hi = entries.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var node = NodeOf(entries[mid]);
            if (node == nodeId)
            {
                return mid;
            }

            if (node < nodeId)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return ~lo;
    }

    private static int NodeOf(long value) => (int)(value & HlcTimestamp.MaxNodeId);

}
