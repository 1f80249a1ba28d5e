namespace CrossStoreSync.Peering.Server;

/// <summary>Repairs the serving side asks the replication service to run (see <see cref="PeerServer"/>).</summary>
internal sealed class RepairRequests
{
    private Action<int>? _handler;

    /// <summary>Set by the replication service when it starts.</summary>
    public void SetHandler(Action<int> handler) => _handler = handler;

    public void Request(int peerNodeId) => _handler?.Invoke(peerNodeId);
}
