using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Telemetry;

/// <summary>
/// The library's log messages, with stable event ids (1xxx engine, 2xxx dispatch, 3xxx recovery, 4xxx consistency, 5xxx
/// migration, 6xxx retention, 7xxx replication, 8xxx compensation and back-off hints). Values that quote user input
/// (keys, reasons, server text) are passed through <see cref="Errors.SafeText.Quote(string?, int)"/> by the callers.
/// </summary>
internal static partial class SyncLog
{
    [LoggerMessage(1000, LogLevel.Information, "CrossStoreSync started: source {Source}, replicas {Replicas}, log at LSN {LastLsn}.")]
    public static partial void EngineStarted(ILogger logger, string source, string replicas, long lastLsn);

    [LoggerMessage(1001, LogLevel.Information, "CrossStoreSync stopped.")]
    public static partial void EngineStopped(ILogger logger);

    [LoggerMessage(1002, LogLevel.Warning, "Source {Store} rejected {Count} change(s) starting at {Key}; aborted.")]
    public static partial void WriteRejected(ILogger logger, string store, int count, string key, Exception exception);

    [LoggerMessage(1003, LogLevel.Warning, "Source {Store} unavailable; {Count} change(s) at LSN {First}..{Last} stay pending and will be applied when it recovers.")]
    public static partial void SourceUnavailable(ILogger logger, string store, long count, long first, long last, Exception exception);

    [LoggerMessage(2000, LogLevel.Debug, "Dispatcher {Store} resumes after LSN {Cursor}.")]
    public static partial void DispatcherResumed(ILogger logger, string store, long cursor);

    [LoggerMessage(2001, LogLevel.Warning, "Store {Store} failed transiently (attempt {Attempt}); retrying in {Delay}.")]
    public static partial void ApplyRetrying(ILogger logger, string store, int attempt, TimeSpan delay, Exception? exception);

    [LoggerMessage(2002, LogLevel.Error, "Store {Store} rejected {Key} (LSN {Lsn}) permanently; dead-lettered: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string store, string key, long lsn, string reason);

    [LoggerMessage(2003, LogLevel.Critical, "Dispatcher {Store} is stopped at LSN {Cursor}: the change log is corrupted at LSN {Lsn} ({Field}). Repair the log; the record is not skipped.")]
    public static partial void LogCorrupted(ILogger logger, string store, long cursor, long lsn, string field, Exception exception);

    [LoggerMessage(2004, LogLevel.Error, "Dispatcher {Store} failed unexpectedly; restarting from its cursor.")]
    public static partial void DispatcherFailed(ILogger logger, string store, Exception exception);

    [LoggerMessage(3000, LogLevel.Information, "Resolved {Committed} pending change(s) as committed and {Aborted} as aborted.")]
    public static partial void PendingResolved(ILogger logger, int committed, int aborted);

    [LoggerMessage(3001, LogLevel.Warning, "Could not resolve pending changes yet; the source is unavailable.")]
    public static partial void PendingResolutionDeferred(ILogger logger, Exception exception);

    [LoggerMessage(3002, LogLevel.Information, "Replayed {Count} dead letter(s) for store {Store}.")]
    public static partial void DeadLettersReplayed(ILogger logger, int count, string store);

    [LoggerMessage(4000, LogLevel.Information, "Consistency check of {Collection} ({Mode}): {SourceEntities} source entities, {Inconsistent} inconsistencies, in {Duration}.")]
    public static partial void CheckCompleted(ILogger logger, string collection, string mode, long sourceEntities, long inconsistent, TimeSpan duration);

    [LoggerMessage(4001, LogLevel.Information, "Repair of {Collection}: {Count} change(s) written through the log.")]
    public static partial void RepairWritten(ILogger logger, string collection, int count);

    [LoggerMessage(5000, LogLevel.Information, "Migration {MigrationId} into {Target} started: {Total} source entities, log position {StartLsn}, {Workers} worker(s).")]
    public static partial void MigrationStarted(ILogger logger, string migrationId, string target, long total, long startLsn, int workers);

    [LoggerMessage(5001, LogLevel.Information, "Migration {MigrationId} into {Target} resumed from its checkpoints: {Done} entities already handled.")]
    public static partial void MigrationResumed(ILogger logger, string migrationId, string target, long done);

    [LoggerMessage(5002, LogLevel.Warning, "Migration {MigrationId} dead-lettered {Key} for {Target}: {Reason}")]
    public static partial void MigrationDeadLettered(ILogger logger, string migrationId, string key, string target, string reason);

    [LoggerMessage(5003, LogLevel.Warning, "Migration {MigrationId}: a batch of {Count} failed transiently on {Target} (attempt {Attempt}); batch size now {BatchSize}.")]
    public static partial void MigrationBatchRetrying(ILogger logger, string migrationId, int count, string target, int attempt, int batchSize, Exception? exception);

    [LoggerMessage(5004, LogLevel.Information, "Migration {MigrationId} into {Target} completed: {Written} written, {Failed} dead-lettered, verified {Verified}, in {Duration}.")]
    public static partial void MigrationCompleted(ILogger logger, string migrationId, string target, long written, long failed, bool verified, TimeSpan duration);

    [LoggerMessage(5005, LogLevel.Information, "Migration {MigrationId} rolled back: {Removed} record(s) removed from {Target}.")]
    public static partial void MigrationRolledBack(ILogger logger, string migrationId, string target, long removed);

    [LoggerMessage(5006, LogLevel.Information, "Store {Store} skips its cursor to {Lsn}: a backfill from the source covers everything before it.")]
    public static partial void CursorSkipped(ILogger logger, string store, long lsn);

    [LoggerMessage(5007, LogLevel.Warning, "A migration progress subscriber threw; the migration goes on.")]
    public static partial void EventSubscriberFailed(ILogger logger, Exception exception);

    [LoggerMessage(2005, LogLevel.Information, "Dispatcher {Store} (worker {Worker}) holds partitions [{Partitions}] of {Total}; {LiveWorkers} worker(s) alive, fair share {FairShare}.")]
    public static partial void PartitionsChanged(ILogger logger, string store, string worker, string partitions, int total, int liveWorkers, int fairShare);

    [LoggerMessage(2006, LogLevel.Warning, "Dispatcher {Store} (worker {Worker}) lost the lease of partitions [{Partitions}]; another worker took them over.")]
    public static partial void PartitionsLost(ILogger logger, string store, string worker, string partitions);

    [LoggerMessage(7000, LogLevel.Warning, "Conflict on {Key} with node {PeerNodeId}: version {Loser} lost to {Winner} ({Resolution}); the losing state is recorded with the conflict.")]
    public static partial void ConflictDetected(ILogger logger, string key, int peerNodeId, string loser, string winner, Log.ConflictResolutionKind resolution);
    [LoggerMessage(6000, LogLevel.Debug, "Log retention round: head {Head}, low-water mark {LowWaterMark}, {Removed} entries removed through LSN {TruncatedThrough}, {Retained} retained.")]
    public static partial void RetentionRound(ILogger logger, long head, long lowWaterMark, long removed, long truncatedThrough, long retained);

    [LoggerMessage(6001, LogLevel.Warning, "{Holder} ({Kind}) holds the change log back at LSN {Position}: {Entries} entries older than KeepAppliedFor ({KeepAppliedFor}) cannot be removed until it moves on.")]
    public static partial void RetentionHeld(ILogger logger, string holder, string kind, long position, long entries, TimeSpan keepAppliedFor);

    [LoggerMessage(6002, LogLevel.Error, "Store {Store} is {Behind} entries behind (cursor {Cursor}, head {Head}), past the retention cap; the log is truncated past its cursor and it needs a rebuild (a backfill through IMigrationManager). Its dispatcher is stopped.")]
    public static partial void StoreCutOff(ILogger logger, string store, long behind, long cursor, long head);

    [LoggerMessage(6003, LogLevel.Information, "Purged {Count} tombstone(s) older than {Horizon} from {Store}/{Collection}.")]
    public static partial void TombstonesPurged(ILogger logger, int count, string horizon, string store, string collection);

    [LoggerMessage(6004, LogLevel.Information, "Removed {Count} dead letter(s) of store {Store} older than DeadLetterRetention ({Retention}).")]
    public static partial void DeadLettersExpired(ILogger logger, int count, string store, TimeSpan retention);

    [LoggerMessage(6005, LogLevel.Warning, "Log retention round failed; the next round tries again.")]
    public static partial void RetentionFailed(ILogger logger, Exception exception);

    [LoggerMessage(6006, LogLevel.Information, "Store {Store} was rebuilt by migration {MigrationId} and checked clean; its dispatcher runs again from LSN {Cursor}.")]
    public static partial void StoreRebuilt(ILogger logger, string store, string migrationId, long cursor);

    [LoggerMessage(6007, LogLevel.Information, "Rebuilding store {Store} automatically with migration {MigrationId}.")]
    public static partial void RebuildStarted(ILogger logger, string store, string migrationId);

    [LoggerMessage(6008, LogLevel.Warning, "The change log {LogType} does not implement IChangeLogRetention; it is never truncated and dead letters never expire.")]
    public static partial void RetentionUnsupported(ILogger logger, string logType);

    [LoggerMessage(6009, LogLevel.Warning, "Store {Store} ({StoreType}) does not implement ITombstoneStore; its tombstones are never purged.")]
    public static partial void TombstonePurgeUnsupported(ILogger logger, string store, string storeType);

    [LoggerMessage(6010, LogLevel.Debug, "Truncation batch: {Removed} entries removed, log truncated through LSN {TruncatedThrough}.")]
    public static partial void TruncationBatch(ILogger logger, long removed, long truncatedThrough);

    [LoggerMessage(6011, LogLevel.Debug, "Tombstone purge batch: {Count} removed from {Store}/{Collection}.")]
    public static partial void TombstoneBatch(ILogger logger, int count, string store, string collection);

    [LoggerMessage(6012, LogLevel.Warning, "Retention holder {Holder} failed; it holds the whole log back this round.")]
    public static partial void RetentionHolderFailed(ILogger logger, string holder, Exception exception);

    [LoggerMessage(6013, LogLevel.Error, "Automatic rebuild of store {Store} with migration {MigrationId} failed; the next retention round tries again.")]
    public static partial void RebuildFailed(ILogger logger, string store, string migrationId, Exception exception);

    [LoggerMessage(6014, LogLevel.Information, "{Holder} no longer holds the change log back.")]
    public static partial void RetentionReleased(ILogger logger, string holder);

    [LoggerMessage(8000, LogLevel.Warning, "Store {Store} rejected {Key} (LSN {Lsn}) permanently; the write will be compensated (undone in every store): {Reason}")]
    public static partial void CompensationRequested(ILogger logger, string store, string key, long lsn, string reason);

    [LoggerMessage(8001, LogLevel.Warning, "Compensated the {Change} of {Key} at LSN {Lsn} that store {Store} rejected: the change at LSN {CompensationLsn} restores {Restored} in every store. Reason: {Reason}")]
    public static partial void Compensated(ILogger logger, string key, string change, long lsn, string store, long compensationLsn, string restored, string reason);

    [LoggerMessage(8002, LogLevel.Information, "The {Change} of {Key} at LSN {Lsn} that store {Store} rejected is not compensated: the newer version {Newer} replaced it and stands in every store. Reason: {Reason}")]
    public static partial void CompensationSuperseded(ILogger logger, string key, string change, long lsn, string store, string newer, string reason);

    [LoggerMessage(8003, LogLevel.Error, "Compensation of {Key} (LSN {Lsn}, rejected by {Store}) failed: the source refused the compensating change. The write stays and is dead-lettered for that store.")]
    public static partial void CompensationFailed(ILogger logger, string key, long lsn, string store, Exception exception);

    [LoggerMessage(8004, LogLevel.Warning, "Requested compensations could not be processed yet; they stay in the change log and are retried.")]
    public static partial void CompensationDeferred(ILogger logger, Exception exception);

    [LoggerMessage(8100, LogLevel.Information, "Store {Store} asked to wait {RetryAfter} before retrying (attempt {Attempt}); waiting {Delay}.")]
    public static partial void RetryAfterHonoured(ILogger logger, string store, TimeSpan retryAfter, int attempt, TimeSpan delay);
}
