using CrossStoreSync.Model;

namespace CrossStoreSync.Log;

/// <summary>Where the compensation of one write stands.</summary>
public enum CompensationState
{
    /// <summary>
    /// The write may be compensated: its prior state is kept. Nothing was rejected (yet); once every store has applied the
    /// write, log retention removes the record.
    /// </summary>
    Armed = 0,

    /// <summary>A replica rejected the write permanently; the decision to compensate is durable, the compensating change not written yet.</summary>
    Requested = 1,

    /// <summary>The compensating change was written (see <see cref="CompensationRecord.CompensationLsn"/>); it restores the prior state everywhere.</summary>
    Compensated = 2,

    /// <summary>
    /// Nothing was written: by the time the compensation ran, the source held a newer state of the key than the rejected
    /// write (<see cref="CompensationRecord.ResolvedVersion"/>), which replaces the rejected write in every store.
    /// </summary>
    Superseded = 3,

    /// <summary>
    /// The source of truth refused the compensating change; the rejected write stays, and is dead-lettered for the store
    /// that rejected it, as under <see cref="Sync.ReplicaRejectionPolicy.DeadLetter"/> (replay it once the cause is fixed).
    /// </summary>
    Failed = 4,
}

/// <summary>The compensation record of one write to a collection (or with a write option) under <see cref="Sync.ReplicaRejectionPolicy.Compensate"/>.</summary>
/// <param name="Lsn">The LSN of the write.</param>
/// <param name="Key">The entity.</param>
/// <param name="Version">The write's version.</param>
/// <param name="Kind">The write's kind: an upsert (a create or an update) or a delete.</param>
/// <param name="Prior">The state the source held before the write, which compensation restores: an upsert with the
/// previous content, or a delete when the source held nothing or a tombstone (its version is the previous one, zero when
/// the key never existed).</param>
/// <param name="State">Where the compensation stands.</param>
/// <param name="Store">The store that rejected the write (the first one, when several did), or null while armed.</param>
/// <param name="Reason">That store's reason, or null while armed.</param>
/// <param name="RequestedAt">When the rejection was recorded, or null while armed.</param>
/// <param name="CompensationLsn">The LSN of the compensating change (state <see cref="CompensationState.Compensated"/> or
/// <see cref="CompensationState.Failed"/>), or null.</param>
/// <param name="ResolvedVersion">The compensating change's version (compensated), or the newer version the source held
/// (superseded); null before resolution.</param>
/// <param name="ResolvedAt">When the compensation was resolved, or null.</param>
public sealed record CompensationRecord(
    long Lsn,
    EntityKey Key,
    HlcTimestamp Version,
    ChangeKind Kind,
    EntityChange Prior,
    CompensationState State,
    string? Store,
    string? Reason,
    DateTimeOffset? RequestedAt,
    long? CompensationLsn,
    HlcTimestamp? ResolvedVersion,
    DateTimeOffset? ResolvedAt);

/// <summary>Selects compensation records (see <see cref="ICompensationLog.ListCompensationsAsync"/>). Every set filter must match.</summary>
/// <param name="MaxCount">The most records returned (at least 1).</param>
public readonly record struct CompensationQuery(int MaxCount)
{
    /// <summary>Only records of writes in this LSN range.</summary>
    public LsnRange? Lsns { get; init; }

    /// <summary>Only records of this key.</summary>
    public EntityKey? Key { get; init; }

    /// <summary>Only records of this collection.</summary>
    public string? Collection { get; init; }

    /// <summary>Only records in this state; null means every state except <see cref="CompensationState.Armed"/>.</summary>
    public CompensationState? State { get; init; }

    /// <summary>Only records of writes after this LSN (paging).</summary>
    public long AfterLsn { get; init; }

    /// <summary>Newest write first instead of oldest first.</summary>
    public bool NewestFirst { get; init; }
}

/// <summary>
/// A change log that keeps, next to each compensable write, the state the source held before it, and the durable
/// decisions to compensate writes a replica rejected (DESIGN.md §3, <see cref="Sync.ReplicaRejectionPolicy.Compensate"/>).
/// This is what the engine uses when the source of truth is elsewhere (pending entries committed after the source
/// write); a log coupled to its source implements <see cref="ISourceCoupledCompensationLog"/> as well.
/// Implementations must be thread-safe.
/// </summary>
public interface ICompensationLog : IChangeLog
{
    /// <summary>
    /// As <see cref="IChangeLog.AppendAsync"/>, and in the same transaction arms a compensation record for every change
    /// whose element of <paramref name="priors"/> is not null: the write's LSN, key and version with its prior state.
    /// </summary>
    /// <param name="changes">The changes, at least one.</param>
    /// <param name="state">The entries' initial state.</param>
    /// <param name="priors">One element per change: the state the source held before it (an upsert, or a delete for
    /// nothing), or null for a change that is not compensable.</param>
    /// <param name="cancellationToken">Cancels the operation before the append is durable.</param>
    ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, IReadOnlyList<EntityChange?> priors, CancellationToken cancellationToken);

    /// <summary>
    /// Records, durably, that <paramref name="store"/> rejected the change of <paramref name="key"/> at
    /// <paramref name="version"/> for good, when that change is a compensable write: an armed record moves to
    /// <see cref="CompensationState.Requested"/> with the store and reason; a record past armed is returned unchanged (a
    /// second rejection of the same write adds nothing).
    /// </summary>
    /// <returns>The record, or null when the change is not a compensable write (it is dead-lettered instead).</returns>
    ValueTask<CompensationRecord?> RequestCompensationAsync(EntityKey key, HlcTimestamp version, string store, string reason, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Lists compensation records matching <paramref name="query"/>, ordered by the write's LSN.</summary>
    /// <exception cref="Errors.ChangeLogCorruptedException">A record failed its checksum.</exception>
    ValueTask<IReadOnlyList<CompensationRecord>> ListCompensationsAsync(CompensationQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Resolves a <see cref="CompensationState.Requested"/> record (the generic path: the engine decided against the
    /// source): with <paramref name="compensating"/>, appends it as a <see cref="LogEntryState.Pending"/> entry and marks
    /// the record <see cref="CompensationState.Compensated"/> with its LSN, in one transaction (the engine applies it to the
    /// source and commits it afterwards, or the pending resolver does after a crash); without, marks the record
    /// <paramref name="state"/> (<see cref="CompensationState.Superseded"/> or <see cref="CompensationState.Failed"/>) with
    /// <paramref name="resolvedVersion"/>. A <see cref="CompensationState.Compensated"/> record may also move to
    /// <see cref="CompensationState.Failed"/> (the source refused the compensating change after it was logged).
    /// </summary>
    /// <returns>The record as resolved, or null when it was not in a state that allows the move (another process resolved it).</returns>
    ValueTask<CompensationRecord?> ResolveCompensationAsync(long lsn, CompensationState state, EntityChange? compensating, HlcTimestamp resolvedVersion, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>
    /// Removes up to <paramref name="maxCount"/> records: armed ones of writes at or below <paramref name="armedThrough"/>
    /// (every store has applied them, so no rejection can come any more) and resolved ones resolved before
    /// <paramref name="resolvedBefore"/>. Requested records are never removed.
    /// </summary>
    /// <returns>How many were removed.</returns>
    ValueTask<int> RemoveCompensationsAsync(long armedThrough, DateTimeOffset resolvedBefore, int maxCount, CancellationToken cancellationToken);
}

/// <summary>
/// A change log coupled to its source of truth (<see cref="ISourceCoupledChangeLog"/>) that keeps compensation records:
/// prior states are read inside the write's own transaction, and a compensation is decided and written in one
/// transaction with the source, so no write can slip between the check and the compensating change.
/// </summary>
public interface ISourceCoupledCompensationLog : ISourceCoupledChangeLog, ICompensationLog
{
    /// <summary>
    /// As <see cref="ISourceCoupledChangeLog.AppendAndApplyAsync"/> for writes made on this node: in one transaction, reads
    /// the state the source holds for every change flagged in <paramref name="compensable"/> and arms its compensation
    /// record, writes the changes and appends them. A change the source's version guard would refuse (the source holds a
    /// newer state, written by a compensation or another process after the change took its version) is given a version
    /// above that state by <paramref name="restamp"/> (replacing the element of <paramref name="changes"/>), so a write
    /// committed later always lands on top.
    /// </summary>
    /// <param name="changes">The changes, at least one; keys distinct.</param>
    /// <param name="compensable">One flag per change.</param>
    /// <param name="checkpoint">A checkpoint saved in the same transaction, or null.</param>
    /// <param name="restamp">Returns the change with a version above the given stored version. Called inside the
    /// transaction; must not block.</param>
    /// <param name="cancellationToken">Cancels the operation before it commits.</param>
    /// <exception cref="Errors.SyncStoreException">The source rejected the write; nothing was written.</exception>
    ValueTask<LsnRange> AppendAndApplyAsync(EntityChange[] changes, IReadOnlyList<bool> compensable, LogCheckpoint? checkpoint, Func<EntityChange, HlcTimestamp, EntityChange> restamp, CancellationToken cancellationToken);

    /// <summary>
    /// Resolves a <see cref="CompensationState.Requested"/> record in one transaction: when the source still holds the
    /// rejected write (its version), writes the change <paramref name="compensating"/> returns for it to the source,
    /// appends it committed and marks the record <see cref="CompensationState.Compensated"/>; when the source holds
    /// anything else, writes nothing and marks the record <see cref="CompensationState.Superseded"/> with the version it holds.
    /// </summary>
    /// <param name="lsn">The record's write LSN.</param>
    /// <param name="compensating">Builds the compensating change from the record and the version the source holds (the
    /// change must be newer than it). Called inside the transaction; must not block.</param>
    /// <param name="at">The resolution time.</param>
    /// <param name="cancellationToken">Cancels the operation before it commits.</param>
    /// <returns>The record after the call (unchanged when it was no longer requested), and the compensating change's
    /// entry when one was written.</returns>
    ValueTask<CompensationOutcome> CompensateAsync(long lsn, Func<CompensationRecord, HlcTimestamp, EntityChange> compensating, DateTimeOffset at, CancellationToken cancellationToken);
}

/// <summary>The result of <see cref="ISourceCoupledCompensationLog.CompensateAsync"/>.</summary>
/// <param name="Record">The record after the call, or null when the log holds none for the LSN.</param>
/// <param name="Written">The compensating change as written (its final version), or null when none was.</param>
/// <param name="ResolvedNow">True when this call resolved the record (false when it was resolved already).</param>
public sealed record CompensationOutcome(CompensationRecord? Record, LogRecord? Written, bool ResolvedNow);
