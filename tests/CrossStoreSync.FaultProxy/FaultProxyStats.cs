namespace CrossStoreSync.FaultProxy;

/// <summary>TEST CODE — byte counters of one direction of a <see cref="TcpFaultProxy"/>, summed over all its connections.</summary>
/// <param name="BytesReceived">Bytes the proxy has read from the sending side.</param>
/// <param name="BytesForwarded">Bytes the proxy has written to the receiving side.</param>
public readonly record struct DirectionStats(long BytesReceived, long BytesForwarded)
{
    /// <summary>
    /// Bytes read but not forwarded: in flight, delayed or withheld by a blackhole; also bytes discarded when their
    /// connection was reset or the proxy disposed.
    /// </summary>
    public long BytesHeld => BytesReceived - BytesForwarded;
}

/// <summary>TEST CODE — a snapshot of what a <see cref="TcpFaultProxy"/> has done.</summary>
/// <param name="ConnectionsAccepted">Connections accepted from clients, including dropped ones.</param>
/// <param name="OpenConnections">Connections open now, including those held by a partition before reaching the target.</param>
/// <param name="Resets">Connections reset by <see cref="TcpFaultProxy.ResetAll"/> or a <see cref="PartitionMode.Reset"/> partition.</param>
/// <param name="DroppedConnections">Connections reset on accept by <see cref="TcpFaultProxy.DropNextConnections"/>.</param>
/// <param name="Upstream">Client-to-server bytes.</param>
/// <param name="Downstream">Server-to-client bytes.</param>
public sealed record FaultProxyStats(
    long ConnectionsAccepted,
    int OpenConnections,
    long Resets,
    long DroppedConnections,
    DirectionStats Upstream,
    DirectionStats Downstream);

/// <summary>Thread-safe byte counters of one direction, shared by every connection of a proxy.</summary>
internal sealed class DirectionCounters
{
    private long _received;
    private long _forwarded;

    public void AddReceived(int count) => Interlocked.Add(ref _received, count);

    public void AddForwarded(int count) => Interlocked.Add(ref _forwarded, count);

    // Forwarded first: every byte is counted received before forwarded, so the snapshot never shows a negative hold.
    public DirectionStats Snapshot()
    {
        var forwarded = Interlocked.Read(ref _forwarded);
        return new DirectionStats(Interlocked.Read(ref _received), forwarded);
    }
}
