using CrossStoreSync.Log;
using CrossStoreSync.Sync;

namespace CrossStoreSync.Peering;

/// <summary>
/// The face of peer replication: status of every peer, pulls on demand, cross-node waits, Merkle repair and the
/// conflicts this node detected. Registered by <c>AddPeering</c>; thread-safe.
/// </summary>
public interface IPeerReplication
{
    /// <summary>This node's id.</summary>
    int NodeId { get; }

    /// <summary>The status of every configured peer, ordered by node id.</summary>
    IReadOnlyList<PeerStatus> GetStatus();

    /// <summary>Pulls from a peer now and returns once this node holds everything the peer's log held when the call began.</summary>
    /// <exception cref="ArgumentException">The node is not a configured peer.</exception>
    /// <exception cref="PeerProtocolException">The peer could not be reached or sent something this node refuses (also
    /// recorded as the peer's last error in <see cref="GetStatus"/> and counted in <c>crossstoresync.peer.errors</c>).</exception>
    Task SyncNowAsync(int peerNodeId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until the given peers (every configured peer when null) have pulled and committed this node's changes up to
    /// the ticket's last log position — read-your-writes across nodes. The peers' own replicas follow through their
    /// dispatchers.
    /// </summary>
    /// <returns>True when every peer acknowledged them; false when <paramref name="timeout"/> passed first.</returns>
    Task<bool> WaitForReplicationAsync(SyncTicket ticket, IReadOnlyCollection<int>? peers, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Compares this node's source with a peer's by Merkle trees over the protocol, collection by collection, and pulls
    /// the states that differ through the normal apply path (newer applied, older ignored, concurrent resolved).
    /// </summary>
    Task<PeerRepairReport> RepairAsync(int peerNodeId, CancellationToken cancellationToken = default);

    /// <summary>Lists the conflicts this node detected, oldest first.</summary>
    ValueTask<IReadOnlyList<ConflictRecord>> GetConflictsAsync(string? collection = null, string? id = null, long afterId = 0, int maxCount = 100, CancellationToken cancellationToken = default);
}

/// <summary>Where replication from one peer stands.</summary>
/// <param name="NodeId">The peer.</param>
/// <param name="Url">Its URL.</param>
/// <param name="LogId">The id of the peer's log the cursor belongs to (null before the first exchange).</param>
/// <param name="Cursor">How far this node has pulled the peer's log.</param>
/// <param name="PeerHead">The peer's log head as of the last exchange.</param>
/// <param name="LagEntries">Entries of the peer's log not pulled yet (as of the last exchange).</param>
/// <param name="LagSeconds">Seconds since this node last held everything the peer's log had; 0 when caught up.</param>
/// <param name="LastSuccess">When the last exchange succeeded.</param>
/// <param name="LastError">The last failure's message, cleared by the next success.</param>
/// <param name="LastErrorCode">The last failure's kind.</param>
/// <param name="AcknowledgedByPeer">How far the peer has pulled this node's log (its acknowledged cursor).</param>
/// <param name="StatesReceived">States received from the peer since start-up.</param>
/// <param name="BytesReceived">Bytes received from the peer since start-up (pulls, repairs, handshakes).</param>
public sealed record PeerStatus(
    int NodeId,
    Uri Url,
    string? LogId,
    long Cursor,
    long PeerHead,
    long LagEntries,
    double LagSeconds,
    DateTimeOffset? LastSuccess,
    string? LastError,
    PeerErrorCode? LastErrorCode,
    long AcknowledgedByPeer,
    long StatesReceived,
    long BytesReceived);

/// <summary>What a Merkle repair against a peer found and did.</summary>
/// <param name="PeerNodeId">The peer.</param>
/// <param name="Collections">Per collection.</param>
/// <param name="BytesReceived">Frame bytes received from the peer.</param>
/// <param name="BytesSent">Request bytes sent.</param>
/// <param name="RoundTrips">Requests made.</param>
/// <param name="Duration">How long it took.</param>
public sealed record PeerRepairReport(int PeerNodeId, IReadOnlyList<CollectionRepair> Collections, long BytesReceived, long BytesSent, int RoundTrips, TimeSpan Duration)
{
    /// <summary>States written on this node by the repair.</summary>
    public int Written => Collections.Sum(c => c.Written);
}

/// <summary>The repair of one collection.</summary>
/// <param name="Collection">The collection.</param>
/// <param name="Leaves">Leaves compared.</param>
/// <param name="DifferingLeaves">Leaves that differed.</param>
/// <param name="Pulled">States pulled from the peer.</param>
/// <param name="Written">States written here (the rest were older or equal).</param>
/// <param name="Conflicts">Conflicts detected.</param>
public sealed record CollectionRepair(string Collection, int Leaves, int DifferingLeaves, int Pulled, int Written, int Conflicts);
