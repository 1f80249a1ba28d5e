namespace CrossStoreSync.Sync;

/// <summary>What the engine does when a replica permanently rejects a change that the source of truth accepted.</summary>
public enum ReplicaRejectionPolicy
{
    /// <summary>
    /// The change is dead-lettered for that replica with the reason; the source and the other replicas keep it, and the
    /// stores disagree on the key until the dead letter is replayed (<see cref="ISyncManager.ReplayDeadLettersAsync"/>).
    /// The default.
    /// </summary>
    DeadLetter = 0,

    /// <summary>
    /// The write is undone everywhere: a compensating change written through the normal path restores, in every store,
    /// the state the source held before the rejected write (its previous content, or a delete when it was a create). The
    /// caller learns it from <see cref="ISyncManager.WaitForSyncAsync"/> (<see cref="SyncWaitOutcome.Compensated"/>).
    /// Prior states are kept in the change log for this, so it needs a log that supports it (SQLite, PostgreSQL and the
    /// in-memory log do). See the architecture guide for the exact guarantee.
    /// </summary>
    Compensate = 1,
}

/// <summary>Per-write settings of <see cref="ISyncManager.WriteAsync(Model.SyncEntity, WriteOptions, CancellationToken)"/> and its siblings.</summary>
/// <remarks>Immutable; share instances freely.</remarks>
public sealed record WriteOptions
{
    /// <summary>A write whose rejection by a replica is compensated (undone everywhere).</summary>
    public static WriteOptions Compensate { get; } = new() { OnReplicaRejection = ReplicaRejectionPolicy.Compensate };

    /// <summary>A write whose rejection by a replica is dead-lettered, whatever its collection's policy.</summary>
    public static WriteOptions DeadLetter { get; } = new() { OnReplicaRejection = ReplicaRejectionPolicy.DeadLetter };

    /// <summary>
    /// Overrides the collection's <see cref="Stores.CollectionDefinition.OnReplicaRejection"/> for this write; null keeps
    /// the collection's policy. <value>Default null.</value>
    /// </summary>
    public ReplicaRejectionPolicy? OnReplicaRejection { get; init; }
}
