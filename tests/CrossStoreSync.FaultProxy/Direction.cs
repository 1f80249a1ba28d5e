namespace CrossStoreSync.FaultProxy;

/// <summary>TEST CODE — one direction of the byte streams a <see cref="TcpFaultProxy"/> forwards.</summary>
public enum Direction
{
    /// <summary>Client to server: what the connecting side sends (an HTTP request).</summary>
    Upstream,

    /// <summary>Server to client: what the listening side sends back (an HTTP response).</summary>
    Downstream,
}

/// <summary>TEST CODE — what <see cref="TcpFaultProxy.Partition"/> does to connections that are already open.</summary>
public enum PartitionMode
{
    /// <summary>
    /// Open connections stay open and stall: bytes in both directions are withheld (nothing is dropped) and delivered
    /// in order on heal, like TCP retransmissions after a partition that healed before any timeout. This is what an
    /// HTTP client sees in a real partition: a request that neither completes nor fails until its own timeout.
    /// </summary>
    Stall,

    /// <summary>
    /// Open connections are reset (TCP RST) when the partition starts, as if a middlebox or the peer's host dropped
    /// its connection state; the client fails at once and its retries then stall like new connections do.
    /// </summary>
    Reset,
}
