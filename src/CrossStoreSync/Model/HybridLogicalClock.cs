namespace CrossStoreSync.Model;

/// <summary>
/// Issues strictly increasing <see cref="HlcTimestamp"/>s for one node. Lock-free; safe for concurrent callers.
/// </summary>
/// <remarks>
/// The clock never goes backwards even when the wall clock does: <see cref="Observe"/> is called at start-up with
/// the newest version found in the change log, so a restarted process with a clock behind cannot issue versions that
/// every store's version guard would silently ignore.
/// </remarks>
internal sealed class HybridLogicalClock
{
    private readonly TimeProvider _time;
    private readonly int _nodeId;
    private long _last; // packed without node id: (ms << CounterBits) | counter

    public HybridLogicalClock(TimeProvider time, int nodeId)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegative(nodeId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(nodeId, HlcTimestamp.MaxNodeId);
        _time = time;
        _nodeId = nodeId;
    }

    public HlcTimestamp Now()
    {
        var wall = _time.GetUtcNow().ToUnixTimeMilliseconds() << HlcTimestamp.CounterBits;
        while (true)
        {
            var last = Volatile.Read(ref _last);
            // Either the wall clock moved past the last issued value, or we tick the counter; a counter overflow
            // carries into the millisecond field, which is exactly what the packed layout does on increment.
            var next = wall > last ? wall : last + 1;
            if (Interlocked.CompareExchange(ref _last, next, last) == last)
            {
                return new HlcTimestamp((next << HlcTimestamp.NodeBits) | (long)_nodeId);
            }
        }
    }

    /// <summary>Moves the clock forward so every later timestamp is newer than <paramref name="seen"/>.</summary>
    public void Observe(HlcTimestamp seen)
    {
        var seenPacked = seen.Value >> HlcTimestamp.NodeBits;
        while (true)
        {
            var last = Volatile.Read(ref _last);
            if (seenPacked <= last || Interlocked.CompareExchange(ref _last, seenPacked, last) == last)
            {
                return;
            }
        }
    }
}
