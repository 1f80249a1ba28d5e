using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Telemetry;

/// <summary>The peering package's log messages (event ids 71xx).</summary>
internal static partial class PeeringLog
{
    [LoggerMessage(7100, LogLevel.Information, "Peer replication of node {NodeId} started with {PeerCount} peer(s); serving on {Endpoint}.")]
    public static partial void Started(ILogger logger, int nodeId, int peerCount, string endpoint);

    [LoggerMessage(7101, LogLevel.Information, "Session with node {PeerNodeId} opened ({Role}).")]
    public static partial void SessionOpened(ILogger logger, int peerNodeId, string role);

    [LoggerMessage(7102, LogLevel.Warning, "Refused a handshake claiming node {PeerNodeId}: {Reason}")]
    public static partial void HandshakeRefused(ILogger logger, int peerNodeId, string reason);

    [LoggerMessage(7103, LogLevel.Warning, "Refused a request from {Remote}: {Reason}")]
    public static partial void RequestRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(7104, LogLevel.Warning, "Pull from node {PeerNodeId} failed ({Code}), attempt {Attempt}; retrying in {Delay}: {Message}")]
    public static partial void PullFailed(ILogger logger, int peerNodeId, PeerErrorCode code, int attempt, TimeSpan delay, string message, Exception? exception);

    [LoggerMessage(7105, LogLevel.Error, "Node {PeerNodeId} sent a state this node refuses ({Reason}); replication from it is held at cursor {Cursor} until it is fixed: {Message}")]
    public static partial void StateRefused(ILogger logger, int peerNodeId, string reason, long cursor, string message);

    [LoggerMessage(7106, LogLevel.Warning, "Node {PeerNodeId} refused this node's cursor {Cursor} ({Reason}); comparing sources by Merkle trees and continuing from its head {Head}.")]
    public static partial void CursorReset(ILogger logger, int peerNodeId, long cursor, string reason, long head);

    [LoggerMessage(7107, LogLevel.Information, "Repair against node {PeerNodeId}, collection {Collection}: {DifferingLeaves} of {Leaves} leaves differ, {Pulled} state(s) pulled, {Written} written, {Bytes} bytes received in {RoundTrips} round trip(s).")]
    public static partial void RepairFinished(ILogger logger, int peerNodeId, string collection, int differingLeaves, int leaves, int pulled, int written, long bytes, int roundTrips);

    [LoggerMessage(7108, LogLevel.Information, "Caught up with node {PeerNodeId} at its log position {Cursor}.")]
    public static partial void CaughtUp(ILogger logger, int peerNodeId, long cursor);

    [LoggerMessage(7109, LogLevel.Warning, "Serving node {PeerNodeId} failed: {Message}")]
    public static partial void ServeFailed(ILogger logger, int peerNodeId, string message, Exception exception);
}
