using CrossStoreSync.Model;

namespace CrossStoreSync.Log;

/// <summary>
/// One entity's current state as it travels between nodes: the change that produces it (an upsert with the whole entity,
/// or a delete) and its causal history.
/// </summary>
/// <param name="Lsn">The sender's log position of the newest entry for the key that the read covered (0 when the state
/// was not read from a log).</param>
/// <param name="Change">The state: its version, content and content hash.</param>
/// <param name="History">The state's causal history; it covers <see cref="EntityChange.Version"/>.</param>
public sealed record ReplicatedState(long Lsn, EntityChange Change, VersionVector History);

/// <summary>What the source of truth holds for a key, with the replication metadata recorded next to it.</summary>
/// <param name="Change">The state (a delete for a tombstone).</param>
/// <param name="History">Its causal history (covers the version).</param>
/// <param name="ReceivedFrom">The node the state was received from, or null when it was written on this node.</param>
public sealed record StoredState(EntityChange Change, VersionVector History, int? ReceivedFrom);

/// <summary>The version and content hash of one entity in the source of truth, tombstones included.</summary>
/// <param name="Id">The entity's id.</param>
/// <param name="Version">Its version.</param>
/// <param name="ContentHash">Its content hash (zero for a tombstone).</param>
/// <param name="Deleted">True for a tombstone.</param>
public readonly record struct StateDigest(string Id, HlcTimestamp Version, UInt128 ContentHash, bool Deleted);

/// <summary>What <see cref="IReplicationLog.ApplyReplicatedAsync"/> does with one received state.</summary>
public enum ReplicationAction
{
    /// <summary>Nothing: the node already holds the state or a newer one.</summary>
    Ignore = 0,

    /// <summary>Only the stored history grows (the content stays: the same event, or a concurrent loser); nothing is appended.</summary>
    MergeHistory = 1,

    /// <summary>A new state is written to the source and appended to the log, so the node's replicas and other peers get it.</summary>
    Write = 2,
}

/// <summary>The decision for one received state.</summary>
/// <param name="Action">What to do.</param>
/// <param name="Write">For <see cref="ReplicationAction.Write"/>: the state to write (the received one, or a new one a
/// conflict resolver produced on this node).</param>
/// <param name="History">The history to store (for <see cref="ReplicationAction.Write"/> and <see cref="ReplicationAction.MergeHistory"/>).</param>
/// <param name="ReceivedFrom">For <see cref="ReplicationAction.Write"/>: the node the written state came from, or null
/// when it is a new state of this node.</param>
/// <param name="Conflicts">The conflicts to record (the two states were concurrent), or null.</param>
public readonly record struct ReplicationDecision(ReplicationAction Action, EntityChange? Write, VersionVector History, int? ReceivedFrom, IReadOnlyList<ConflictRecord>? Conflicts)
{
    /// <summary>Nothing to do.</summary>
    public static ReplicationDecision Ignore => default;
}

/// <summary>
/// Decides what to do with one received state given what the source holds; called by the log inside the transaction
/// that applies the batch, so the stored state cannot change in between. Must not block.
/// </summary>
/// <param name="incoming">The received state.</param>
/// <param name="local">What the source holds for the key, or null when it holds nothing. Its version, history, origin and
/// content hash are always the stored ones; its content is whole only when the two states are concurrent (the one case a
/// decision looks at content, to resolve and record a conflict): otherwise a log may pass an upsert with an empty
/// document in its place, to spare reading kilobytes per key.</param>
public delegate ReplicationDecision ReplicationDecider(ReplicatedState incoming, StoredState? local);

/// <summary>How a conflict between two concurrent states was resolved.</summary>
public enum ConflictResolutionKind
{
    /// <summary>The state that was already stored here won.</summary>
    KeptLocal = 0,

    /// <summary>The received state won.</summary>
    TookRemote = 1,

    /// <summary>A conflict resolver produced a new state from the two (or chose the older one), written as a new state of this node.</summary>
    Resolved = 2,
}

/// <summary>A conflict: two states of one entity written concurrently on different nodes, and which one won.</summary>
/// <param name="Id">The record's id (0 until stored).</param>
/// <param name="Key">The entity.</param>
/// <param name="DetectedAt">When this node detected it.</param>
/// <param name="PeerNodeId">The node the received state came from.</param>
/// <param name="Winner">The version that won (for <see cref="ConflictResolutionKind.Resolved"/>, the new state's version).</param>
/// <param name="Loser">The losing state, kept whole so nothing is lost silently (a delete for a deleted entity).</param>
/// <param name="Resolution">How it was resolved.</param>
public sealed record ConflictRecord(long Id, EntityKey Key, DateTimeOffset DetectedAt, int PeerNodeId, HlcTimestamp Winner, EntityChange Loser, ConflictResolutionKind Resolution);

/// <summary>The result of <see cref="IReplicationLog.ReadReplicationAsync"/>.</summary>
/// <param name="ReadThrough">The log position the read covered: a puller's cursor may advance to it.</param>
/// <param name="Fingerprint">The checksum of the entry at <see cref="ReadThrough"/> (0 when it is 0), which a puller keeps
/// with its cursor so that a sender restored from a backup or reset is detected.</param>
/// <param name="Head">The newest log position when the read ran.</param>
public readonly record struct ReplicationReadResult(long ReadThrough, long Fingerprint, long Head);

/// <summary>The result of <see cref="IReplicationLog.ApplyReplicatedAsync"/>.</summary>
/// <param name="Appended">The log entries appended for written states, or null when none was written.</param>
/// <param name="Decisions">The decision for each received state, in order (written changes carry their final versions).</param>
/// <param name="Conflicts">The conflicts recorded, with their ids.</param>
public sealed record ReplicationApplyResult(LsnRange? Appended, IReadOnlyList<ReplicationDecision> Decisions, IReadOnlyList<ConflictRecord> Conflicts);

/// <summary>
/// A change log coupled to its source of truth that can exchange entity states with other nodes (DESIGN.md §7): it keeps
/// each key's causal history and the node a state came from next to the document, serves the current states of the keys
/// its log touched after a position, applies received states in one transaction with the decision of a
/// <see cref="ReplicationDecider"/> and a checkpoint (the puller's cursor), and records conflicts. Thread-safe.
/// </summary>
public interface IReplicationLog : ISourceCoupledChangeLog
{
    /// <summary>The log's identity: a random id created with the log. A new id means a new (reset or re-created) log.</summary>
    ValueTask<string> GetLogIdAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Reads up to <paramref name="maxEntries"/> committed entries after <paramref name="afterLsn"/> and adds the current
    /// state of each distinct key they touch to <paramref name="destination"/>, skipping keys whose current state came
    /// from <paramref name="skipReceivedFrom"/> (it holds them already: no echo) and collections
    /// <paramref name="includeCollection"/> refuses.
    /// </summary>
    /// <param name="afterLsn">The puller's cursor.</param>
    /// <param name="maxEntries">The most log entries to read.</param>
    /// <param name="skipReceivedFrom">The puller's node id.</param>
    /// <param name="includeCollection">Which collections travel.</param>
    /// <param name="destination">Receives the states, ordered by their <see cref="ReplicatedState.Lsn"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    ValueTask<ReplicationReadResult> ReadReplicationAsync(long afterLsn, int maxEntries, int skipReceivedFrom, Func<string, bool> includeCollection, List<ReplicatedState> destination, CancellationToken cancellationToken);

    /// <summary>The checksum of the entry at <paramref name="lsn"/>, or null when the log does not hold it (not written yet, or truncated).</summary>
    ValueTask<long?> GetFingerprintAsync(long lsn, CancellationToken cancellationToken);

    /// <summary>
    /// Applies received states in one transaction: reads what the source holds for their keys, asks
    /// <paramref name="decide"/> for each, writes the new states (source and log), grows histories, records conflicts and
    /// saves <paramref name="checkpoint"/>. Either all of it commits or none of it.
    /// </summary>
    /// <param name="states">The states; keys distinct.</param>
    /// <param name="fromNode">The node they came from.</param>
    /// <param name="decide">The decision function.</param>
    /// <param name="checkpoint">A checkpoint saved in the same transaction (the puller's cursor), or null.</param>
    /// <param name="cancellationToken">Cancels the operation before it commits.</param>
    ValueTask<ReplicationApplyResult> ApplyReplicatedAsync(IReadOnlyList<ReplicatedState> states, int fromNode, ReplicationDecider decide, LogCheckpoint? checkpoint, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="ISourceCoupledChangeLog.AppendAndApplyAsync"/> for writes made on this node, except that a change
    /// the source's version guard refuses because a newer state arrived from another node after the change took its
    /// version is given a new version by <paramref name="restamp"/> (replacing the element of <paramref name="changes"/>)
    /// and written on top of that state: a write applied on this node after a received state follows it.
    /// </summary>
    ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, LogCheckpoint? checkpoint, Func<EntityChange, EntityChange> restamp, CancellationToken cancellationToken);

    /// <summary>Reads what the source holds for the keys (tombstones included); keys it never held are left out.</summary>
    ValueTask<IReadOnlyList<StoredState>> ReadStatesAsync(IReadOnlyList<EntityKey> keys, CancellationToken cancellationToken);

    /// <summary>
    /// Reads a page of the digests of a collection's states in the source (tombstones included) whose bucket is in
    /// <paramref name="range"/>, ordered by (bucket, id), after <paramref name="afterId"/>.
    /// </summary>
    ValueTask<IReadOnlyList<StateDigest>> ScanStateDigestsAsync(string collection, BucketRange range, string? afterId, int limit, CancellationToken cancellationToken);

    /// <summary>Lists recorded conflicts after <paramref name="afterId"/>, oldest first, optionally for one collection or key.</summary>
    ValueTask<IReadOnlyList<ConflictRecord>> ListConflictsAsync(string? collection, string? id, long afterId, int maxCount, CancellationToken cancellationToken);
}
