using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Telemetry;

/// <summary>The library's log messages, with stable event ids (1xxx engine, 2xxx dispatch, 3xxx recovery).</summary>
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
}
