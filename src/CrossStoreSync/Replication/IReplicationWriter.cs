using CrossStoreSync.Log;
using CrossStoreSync.Sync;

namespace CrossStoreSync.Replication;

/// <summary>
/// The engine's entry point for replication between nodes (DESIGN.md §7): received states are validated like local
/// writes, decided against what the source holds (newer applied, older dropped, concurrent resolved and recorded as a
/// conflict) and written in one source transaction together with the puller's cursor; written states then reach this
/// node's replicas through the normal dispatchers. Registered by <c>AddCrossStoreSync</c>; thread-safe.
/// </summary>
/// <remarks>Replication needs a change log that commits with its source of truth and keeps causal histories
/// (<see cref="IReplicationLog"/>: the SQLite and PostgreSQL logs).</remarks>
public interface IReplicationWriter
{
    /// <summary>This node's id (<see cref="Configuration.CrossStoreSyncOptions.NodeId"/>), the node id of every version it issues.</summary>
    int NodeId { get; }

    /// <summary>The last log position appended on this node (by local writes and by received states).</summary>
    long Head { get; }

    /// <summary>Starts the engine if needed and returns its replication log.</summary>
    /// <exception cref="Errors.ReplicationNotSupportedException">The configured change log cannot replicate.</exception>
    ValueTask<IReplicationLog> GetLogAsync(CancellationToken cancellationToken = default);

    /// <summary>Completes when <see cref="Head"/> passes <paramref name="afterLsn"/> (a new entry was appended).</summary>
    ValueTask WaitForHeadAsync(long afterLsn, CancellationToken cancellationToken = default);

    /// <summary>Validates and applies a batch of received states in one transaction with its cursor.</summary>
    /// <exception cref="Errors.ReplicationRejectedException">A state is invalid (named with its reason); nothing was applied and the cursor did not move.</exception>
    ValueTask<ReplicationWriteResult> ApplyAsync(ReplicationBatch batch, CancellationToken cancellationToken = default);
}

/// <summary>A batch of states received from one node.</summary>
/// <param name="FromNode">The node they came from.</param>
/// <param name="States">The states; keys distinct.</param>
public sealed record ReplicationBatch(int FromNode, IReadOnlyList<ReplicatedState> States)
{
    /// <summary>A checkpoint saved in the same transaction (the puller's cursor), or null.</summary>
    public LogCheckpoint? Cursor { get; init; }

    /// <summary>The conflict resolver of each collection; null or a null result means last writer wins.</summary>
    public Func<string, IConflictResolver?>? Resolvers { get; init; }

    /// <summary>Which collections the sender may send; null allows every configured collection.</summary>
    public Func<string, bool>? AllowCollection { get; init; }

    /// <summary>How far ahead of this node's clock a state's version may be. <value>Default 1 minute.</value></summary>
    public TimeSpan MaxClockAhead { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>The result of <see cref="IReplicationWriter.ApplyAsync"/>.</summary>
/// <param name="Ticket">The ticket of the written states (wait on it for this node's replicas), or null when nothing was written.</param>
/// <param name="Written">States written to the source (received ones and resolutions).</param>
/// <param name="MergedHistories">States that only grew a stored history.</param>
/// <param name="Ignored">States the node already held or had superseded.</param>
/// <param name="Conflicts">The conflicts detected, as recorded.</param>
public sealed record ReplicationWriteResult(SyncTicket? Ticket, int Written, int MergedHistories, int Ignored, IReadOnlyList<ConflictRecord> Conflicts);
