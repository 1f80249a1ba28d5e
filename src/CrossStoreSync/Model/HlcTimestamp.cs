using System.Globalization;

namespace CrossStoreSync.Model;

/// <summary>
/// A hybrid logical clock timestamp: physical milliseconds since the Unix epoch, a logical counter and a node id,
/// packed into one positive 63-bit integer so that integer order is the clock's total order (ties broken by node id).
/// </summary>
/// <remarks>
/// Layout of <see cref="Value"/> (most significant first): 43 bits of milliseconds (until the year 2248),
/// 12 bits of counter, 8 bits of node id. One integer keeps the version guard a single comparison in every store
/// (SQL <c>WHERE</c>, Cypher, SurrealQL, a Qdrant payload filter).
/// </remarks>
public readonly record struct HlcTimestamp : IComparable<HlcTimestamp>
{
    internal const int NodeBits = 8;
    internal const int CounterBits = 12;
    internal const long MaxWallTimeMs = (1L << 43) - 1;
    internal const int MaxCounter = (1 << CounterBits) - 1;

    /// <summary>The highest node id.</summary>
    public const int MaxNodeId = (1 << NodeBits) - 1;

    /// <summary>Wraps a packed value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public HlcTimestamp(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        Value = value;
    }

    /// <summary>Builds a timestamp from its parts.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A part is out of its range.</exception>
    public HlcTimestamp(long wallTimeMs, int counter, int nodeId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(wallTimeMs);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(wallTimeMs, MaxWallTimeMs);
        ArgumentOutOfRangeException.ThrowIfNegative(counter);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(counter, MaxCounter);
        ArgumentOutOfRangeException.ThrowIfNegative(nodeId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(nodeId, MaxNodeId);
        Value = (wallTimeMs << (CounterBits + NodeBits)) | ((long)counter << NodeBits) | (long)nodeId;
    }

    /// <summary>The zero timestamp, older than every real one.</summary>
    public static HlcTimestamp Zero => default;

    /// <summary>The packed value; integer order equals clock order.</summary>
    public long Value { get; }

    /// <summary>Physical milliseconds since the Unix epoch.</summary>
    public long WallTimeMs => Value >> (CounterBits + NodeBits);

    /// <summary>Logical counter within the millisecond.</summary>
    public int Counter => (int)((Value >> NodeBits) & MaxCounter);

    /// <summary>The node that issued the timestamp.</summary>
    public int NodeId => (int)(Value & MaxNodeId);

    /// <inheritdoc />
    public int CompareTo(HlcTimestamp other) => Value.CompareTo(other.Value);

    /// <summary>Less-than operator.</summary>
    public static bool operator <(HlcTimestamp left, HlcTimestamp right) => left.Value < right.Value;

    /// <summary>Greater-than operator.</summary>
    public static bool operator >(HlcTimestamp left, HlcTimestamp right) => left.Value > right.Value;

    /// <summary>Less-or-equal operator.</summary>
    public static bool operator <=(HlcTimestamp left, HlcTimestamp right) => left.Value <= right.Value;

    /// <summary>Greater-or-equal operator.</summary>
    public static bool operator >=(HlcTimestamp left, HlcTimestamp right) => left.Value >= right.Value;

    /// <summary>Returns <c>ms.counter@node</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{WallTimeMs}.{Counter}@{NodeId}");
}
