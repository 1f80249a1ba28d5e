using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Sync;

/// <summary>
/// The face of the engine: writes entities through the change log to every store, tracks their status and exposes
/// events and dead letters. Thread-safe. Resolve it from DI after <c>AddCrossStoreSync</c>; the hosted service starts
/// the dispatchers (calls made before start-up wait for initialisation).
/// </summary>
public interface ISyncManager
{
    /// <summary>
    /// Validates and writes one entity: appended durably to the log, applied to the source of truth, then applied to
    /// every replica in the background.
    /// </summary>
    /// <exception cref="ArgumentException">The entity is invalid; nothing was written.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the write; no replica will see it.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the change is logged as pending and will be applied later.</exception>
    ValueTask<SyncTicket> WriteAsync(SyncEntity entity, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="WriteAsync(SyncEntity, CancellationToken)"/>, with per-write settings: <see cref="WriteOptions.OnReplicaRejection"/>
    /// overrides the collection's policy for replicas that reject the write for good.
    /// </summary>
    /// <exception cref="ArgumentException">The entity or the options are invalid; nothing was written.</exception>
    /// <exception cref="InvalidOperationException">The write asks for compensation but the change log cannot keep prior states.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the write; no replica will see it.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the change is logged as pending and will be applied later.</exception>
    /// <exception cref="Errors.SyncStoreException">A compensable write on a source with a separate log: the source could not
    /// be read for the prior state; nothing was written.</exception>
    ValueTask<SyncTicket> WriteAsync(SyncEntity entity, WriteOptions options, CancellationToken cancellationToken = default);

    /// <summary>Writes several entities as one atomic log append and one source apply. Keys must be distinct.</summary>
    /// <exception cref="ArgumentException">An entity is invalid or a key repeats; nothing was written.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the batch; none of it is stored.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the changes are logged as pending.</exception>
    ValueTask<SyncTicket> WriteBatchAsync(IReadOnlyList<SyncEntity> entities, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="WriteBatchAsync(IReadOnlyList{SyncEntity}, CancellationToken)"/>, with per-write settings for every entity of the batch.</summary>
    /// <exception cref="ArgumentException">An entity or the options are invalid, or a key repeats; nothing was written.</exception>
    /// <exception cref="InvalidOperationException">The write asks for compensation but the change log cannot keep prior states.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the batch; none of it is stored.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the changes are logged as pending.</exception>
    ValueTask<SyncTicket> WriteBatchAsync(IReadOnlyList<SyncEntity> entities, WriteOptions options, CancellationToken cancellationToken = default);

    /// <summary>Deletes an entity from every store.</summary>
    /// <exception cref="ArgumentException">The key is invalid or its collection is not configured.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the delete.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the delete is logged as pending.</exception>
    ValueTask<SyncTicket> DeleteAsync(EntityKey key, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="DeleteAsync(EntityKey, CancellationToken)"/>, with per-write settings (a compensated delete restores the entity).</summary>
    /// <exception cref="ArgumentException">The key or the options are invalid, or the key's collection is not configured.</exception>
    /// <exception cref="InvalidOperationException">The delete asks for compensation but the change log cannot keep prior states.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the delete.</exception>
    /// <exception cref="Errors.SourceUnavailableException">The source is down; the delete is logged as pending.</exception>
    ValueTask<SyncTicket> DeleteAsync(EntityKey key, WriteOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until every replica has processed the ticket's changes (read-your-writes across every store). A replica
    /// that needs a rebuild (<see cref="StoreSyncState.NeedsRebuild"/>) processes nothing until it is rebuilt, so a wait
    /// on it times out. Entries already truncated from the log count as applied (they are below every cursor); only a
    /// change still in the log can be reported <see cref="SyncWaitOutcome.Aborted"/>.
    /// </summary>
    /// <remarks>
    /// A change a replica rejected under <see cref="ReplicaRejectionPolicy.Compensate"/> is reported once its compensation
    /// is resolved and, when a compensating change was written, once every store has applied that change too: the wait
    /// then covers "undone everywhere". <see cref="WaitForSyncResultAsync"/> also says which store rejected what and why.
    /// </remarks>
    /// <returns><see cref="SyncWaitOutcome.Synced"/> when all stores applied them; <see cref="SyncWaitOutcome.DeadLettered"/>
    /// when a store rejected one of them (or a compensating change of them); <see cref="SyncWaitOutcome.Compensated"/> when
    /// a store rejected one of them and it was undone in every store; <see cref="SyncWaitOutcome.Aborted"/> when the
    /// source rejected one of them after it was logged; <see cref="SyncWaitOutcome.TimedOut"/> when
    /// <paramref name="timeout"/> passed first.</returns>
    ValueTask<SyncWaitOutcome> WaitForSyncAsync(SyncTicket ticket, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="WaitForSyncAsync"/>, returning with the outcome the compensations of the ticket's writes: which store
    /// rejected which key and why, and whether the write was undone (<see cref="CompensationState.Compensated"/>) or
    /// replaced by a newer write first (<see cref="CompensationState.Superseded"/>).
    /// </summary>
    ValueTask<SyncWaitResult> WaitForSyncResultAsync(SyncTicket ticket, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lists compensations (writes a replica rejected under <see cref="ReplicaRejectionPolicy.Compensate"/>), newest first,
    /// optionally for one collection. They are kept for <see cref="Configuration.LogRetentionOptions.DeadLetterRetention"/>.
    /// </summary>
    /// <returns>The compensations; empty when the change log keeps none.</returns>
    ValueTask<IReadOnlyList<CompensationRecord>> GetCompensationsAsync(string? collection = null, int maxCount = 1000, CancellationToken cancellationToken = default);

    /// <summary>
    /// The sync status of one entity in every store. Once the key's entries have been truncated from the log (every store
    /// applied them), <see cref="EntitySyncStatus.LastLsn"/> is null, the version is the source's, and each store is
    /// synced unless it dead-lettered the key's last change or needs a rebuild.
    /// </summary>
    ValueTask<EntitySyncStatus> GetStatusAsync(EntityKey key, CancellationToken cancellationToken = default);

    /// <summary>Per-store cursor, lag and dead-letter figures.</summary>
    ValueTask<IReadOnlyList<StoreStatistics>> GetStatisticsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams engine events (applied batches, retries, dead letters) from now on. Each subscriber has a bounded buffer
    /// (<see cref="Configuration.CrossStoreSyncOptions.EventBufferCapacity"/>); the oldest events are dropped when it is full.
    /// </summary>
    IAsyncEnumerable<SyncEvent> SubscribeAsync(CancellationToken cancellationToken = default);

    /// <summary>Lists dead letters, oldest first, optionally for one store.</summary>
    ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(string? store = null, int maxCount = 1000, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replays dead letters: the current state of each key is read from the source of truth and re-appended to the log
    /// as a committed change, so it flows through the normal dispatchers again. Returns how many were replayed.
    /// </summary>
    ValueTask<int> ReplayDeadLettersAsync(string? store = null, CancellationToken cancellationToken = default);
}

/// <summary>Identifies the log entries of one write; pass it to <see cref="ISyncManager.WaitForSyncAsync"/>.</summary>
/// <param name="Lsns">The log sequence numbers assigned to the write.</param>
/// <param name="Version">The newest version the write assigned.</param>
public readonly record struct SyncTicket(LsnRange Lsns, HlcTimestamp Version);

/// <summary>The result of <see cref="ISyncManager.WaitForSyncAsync"/>.</summary>
public enum SyncWaitOutcome
{
    /// <summary>Every store applied the changes.</summary>
    Synced = 0,

    /// <summary>Every store processed them, but at least one store dead-lettered one of them.</summary>
    DeadLettered = 1,

    /// <summary>The timeout passed first.</summary>
    TimedOut = 2,

    /// <summary>
    /// The source of truth rejected at least one of the changes after they were logged (a write left pending by a
    /// source outage and rejected when it was retried); those changes were applied nowhere.
    /// </summary>
    Aborted = 3,

    /// <summary>
    /// A replica rejected at least one of the changes for good and, under <see cref="ReplicaRejectionPolicy.Compensate"/>,
    /// it was undone in every store: a compensating change restored the prior state everywhere, or a newer write had
    /// already replaced it (see <see cref="SyncWaitResult.Compensations"/>). The other changes were applied.
    /// </summary>
    Compensated = 4,
}

/// <summary>The result of <see cref="ISyncManager.WaitForSyncResultAsync"/>.</summary>
/// <param name="Outcome">The outcome, as <see cref="ISyncManager.WaitForSyncAsync"/> reports it.</param>
/// <param name="Compensations">The compensations of the ticket's writes (store, key, reason, how they were resolved);
/// empty when none was rejected. With <see cref="SyncWaitOutcome.TimedOut"/>, those known so far.</param>
public sealed record SyncWaitResult(SyncWaitOutcome Outcome, IReadOnlyList<CompensationRecord> Compensations);

/// <summary>Where a store stands for one entity.</summary>
public enum StoreSyncState
{
    /// <summary>The store holds the entity's latest logged change.</summary>
    Synced = 0,

    /// <summary>The store has not applied the latest change yet.</summary>
    Pending = 1,

    /// <summary>The store rejected the latest change permanently; see the reason.</summary>
    DeadLettered = 2,

    /// <summary>The source rejected the latest change; it was never applied anywhere.</summary>
    Aborted = 3,

    /// <summary>
    /// The store fell behind past the log's retention and waits for a rebuild (a backfill through the migration manager);
    /// it applies nothing until then.
    /// </summary>
    NeedsRebuild = 4,

    /// <summary>
    /// The store rejected the key's latest write for good and the write is being undone everywhere
    /// (<see cref="ReplicaRejectionPolicy.Compensate"/>); see the reason and <see cref="EntitySyncStatus.Compensation"/>.
    /// </summary>
    Compensating = 5,
}

/// <summary>The status of one entity in one store.</summary>
/// <param name="Store">The store.</param>
/// <param name="State">Its state.</param>
/// <param name="Cursor">The store's cursor.</param>
/// <param name="Reason">The dead-letter reason, if any.</param>
public sealed record StoreEntityStatus(string Store, StoreSyncState State, long Cursor, string? Reason);

/// <summary>The status of one entity in every store.</summary>
/// <param name="Key">The entity.</param>
/// <param name="LastLsn">The LSN of its newest log entry, or null when the log holds none.</param>
/// <param name="Version">The version of that entry.</param>
/// <param name="Stores">One entry per store, source first.</param>
public sealed record EntitySyncStatus(EntityKey Key, long? LastLsn, HlcTimestamp? Version, IReadOnlyList<StoreEntityStatus> Stores)
{
    /// <summary>
    /// The key's latest compensation still on record (a write a replica rejected under
    /// <see cref="ReplicaRejectionPolicy.Compensate"/>: which store, why, and how it was undone), or null.
    /// </summary>
    public CompensationRecord? Compensation { get; init; }

    /// <summary>True when every store is <see cref="StoreSyncState.Synced"/>.</summary>
    public bool IsSynced
    {
        get
        {
            foreach (var s in Stores)
            {
                if (s.State != StoreSyncState.Synced)
                {
                    return false;
                }
            }

            return true;
        }
    }
}

/// <summary>Figures for one store.</summary>
/// <param name="Store">The store.</param>
/// <param name="IsSource">True for the source of truth.</param>
/// <param name="Cursor">The store's durable cursor (the log's last LSN for the source).</param>
/// <param name="LagChanges">Log entries not applied yet.</param>
/// <param name="LagSeconds">Age of the oldest unapplied change.</param>
/// <param name="DeadLetters">Dead letters recorded for the store (up to 10,000 counted).</param>
/// <param name="Faulted">True when the dispatcher is stopped by a corrupted log record.</param>
public sealed record StoreStatistics(string Store, bool IsSource, long Cursor, long LagChanges, double LagSeconds, int DeadLetters, bool Faulted)
{
    /// <summary>
    /// True when the store fell behind past the log's retention: its dispatcher is stopped until a backfill through the
    /// migration manager rebuilds it.
    /// </summary>
    public bool NeedsRebuild { get; init; }
}

/// <summary>What happened.</summary>
public enum SyncEventKind
{
    /// <summary>A store applied a batch.</summary>
    Applied = 0,

    /// <summary>A store failed transiently; the batch will be retried.</summary>
    Retrying = 1,

    /// <summary>A store rejected a change permanently; it was dead-lettered.</summary>
    DeadLettered = 2,

    /// <summary>A dispatcher stopped on a corrupted log record.</summary>
    Faulted = 3,

    /// <summary>The source rejected a write; it was aborted.</summary>
    Aborted = 4,

    /// <summary>
    /// The partitions of a shared change log that this process dispatches for a store changed (a worker joined, left or
    /// died). <see cref="SyncEvent.Count"/> is the number held now; <see cref="SyncEvent.Message"/> lists them.
    /// </summary>
    PartitionsChanged = 5,

    /// <summary>
    /// A state received from another node was concurrent with the one this node held (neither had seen the other); the
    /// collection's resolver kept one and the other is recorded with the conflict. <see cref="SyncEvent.Key"/> is the
    /// entity; <see cref="SyncEvent.Message"/> names the peer, the winner and the loser.
    /// </summary>
    ConflictDetected = 12,

    /// <summary>
    /// The retention task removed log entries every store had applied. <see cref="SyncEvent.FirstLsn"/> ..
    /// <see cref="SyncEvent.LastLsn"/> is the range removed; <see cref="SyncEvent.Count"/> how many.
    /// </summary>
    LogTruncated = 6,

    /// <summary>
    /// A store, migration or retention holder (<see cref="SyncEvent.Store"/> names it) holds back log entries older than
    /// <see cref="Configuration.LogRetentionOptions.KeepAppliedFor"/>, so the log grows. <see cref="SyncEvent.FirstLsn"/>
    /// is its position, <see cref="SyncEvent.LastLsn"/> the head, <see cref="SyncEvent.Count"/> the entries held.
    /// Published every retention round while it lasts.
    /// </summary>
    RetentionHeld = 7,

    /// <summary>
    /// A replica fell behind past <see cref="Configuration.LogRetentionOptions.MaxRetainedEntries"/> (or its cursor is
    /// below the truncated log): the log no longer holds what it missed, its dispatcher stopped, and a backfill through
    /// the migration manager must rebuild it. <see cref="SyncEvent.FirstLsn"/> is its cursor.
    /// </summary>
    NeedsRebuild = 8,

    /// <summary>Old tombstones were purged from a store; <see cref="SyncEvent.Message"/> names the collection.</summary>
    TombstonesPurged = 9,

    /// <summary>Dead letters older than <see cref="Configuration.LogRetentionOptions.DeadLetterRetention"/> were removed.</summary>
    DeadLettersExpired = 10,

    /// <summary>A replica that needed a rebuild was backfilled and checked clean; its dispatcher runs again.</summary>
    Rebuilt = 11,

    /// <summary>
    /// A write a replica rejected under <see cref="ReplicaRejectionPolicy.Compensate"/> was resolved: undone by a compensating
    /// change (<see cref="SyncEvent.FirstLsn"/> is the write, <see cref="SyncEvent.LastLsn"/> the compensating change), or
    /// superseded by a newer write (<see cref="SyncEvent.LastLsn"/> equals the write's). <see cref="SyncEvent.Store"/> is the
    /// store that rejected it; <see cref="SyncEvent.Message"/> says what was undone and why.
    /// </summary>
    Compensated = 13,
}

/// <summary>An engine event.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Store">The store.</param>
/// <param name="FirstLsn">The first LSN involved.</param>
/// <param name="LastLsn">The last LSN involved.</param>
/// <param name="Count">Changes involved.</param>
/// <param name="Key">The entity, for per-change events.</param>
/// <param name="Message">A reason or error message, when there is one.</param>
/// <param name="Attempt">The retry attempt, for <see cref="SyncEventKind.Retrying"/>.</param>
/// <param name="At">When it happened.</param>
public sealed record SyncEvent(SyncEventKind Kind, string Store, long FirstLsn, long LastLsn, int Count, EntityKey? Key, string? Message, int Attempt, DateTimeOffset At);
