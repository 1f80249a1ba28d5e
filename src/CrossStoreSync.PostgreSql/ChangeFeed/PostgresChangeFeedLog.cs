using Microsoft.Extensions.Logging;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>Log messages of the PostgreSQL change feed (event ids 7100–7199).</summary>
internal static partial class PostgresChangeFeedLog
{
    [LoggerMessage(7100, LogLevel.Information, "Change feed {Feed} starts: slot {Slot}, publication {Publication}, resuming at {Position}.")]
    public static partial void Started(ILogger logger, string feed, string slot, string publication, string position);

    [LoggerMessage(7101, LogLevel.Information, "Change feed {Feed} created replication slot {Slot} at {Lsn}.")]
    public static partial void SlotCreated(ILogger logger, string feed, string slot, string lsn);

    [LoggerMessage(7102, LogLevel.Information, "Change feed {Feed} created publication {Publication} for {Tables}.")]
    public static partial void PublicationCreated(ILogger logger, string feed, string publication, string tables);

    [LoggerMessage(7103, LogLevel.Information, "Change feed {Feed} added {Tables} to publication {Publication}.")]
    public static partial void PublicationExtended(ILogger logger, string feed, string publication, string tables);

    [LoggerMessage(7104, LogLevel.Debug, "Change feed {Feed} wrote {Count} change(s) up to {Position}.")]
    public static partial void BatchWritten(ILogger logger, string feed, int count, string position);

    [LoggerMessage(7105, LogLevel.Warning, "Change feed {Feed} adopts the existing slot {Slot} at {Lsn}; changes confirmed before it are not replayed.")]
    public static partial void SlotAdopted(ILogger logger, string feed, string slot, string lsn);

    [LoggerMessage(7106, LogLevel.Debug, "Change feed {Feed} skipped {Count} change(s) already written before a restart.")]
    public static partial void Skipped(ILogger logger, string feed, int count);

    [LoggerMessage(7107, LogLevel.Warning, "Change feed {Feed}: TRUNCATE of {Tables} at {Lsn} is not replicated to the stores; run a consistency check and repair.")]
    public static partial void TruncateIgnored(ILogger logger, string feed, string tables, string lsn);

    [LoggerMessage(7108, LogLevel.Warning, "Change feed {Feed} lost its connection; reconnecting in {Delay}.")]
    public static partial void Reconnecting(ILogger logger, string feed, TimeSpan delay, Exception exception);

    [LoggerMessage(7109, LogLevel.Critical, "Change feed {Feed} stopped: {Reason}")]
    public static partial void Stopped(ILogger logger, string feed, string reason, Exception exception);

    [LoggerMessage(7110, LogLevel.Critical, "Change feed {Feed}: replication slot {Slot} is lost ({Reason}); changes may be missing from every store. See docs/postgres-cdc.md for the recovery.")]
    public static partial void SlotLost(ILogger logger, string feed, string slot, PostgresSlotLossReason reason);

    [LoggerMessage(7111, LogLevel.Debug, "Change feed {Feed} confirmed {Lsn} to the server.")]
    public static partial void Confirmed(ILogger logger, string feed, string lsn);

    [LoggerMessage(7112, LogLevel.Warning, "Change feed {Feed} could not emit a heartbeat.")]
    public static partial void HeartbeatFailed(ILogger logger, string feed, Exception exception);

    [LoggerMessage(7114, LogLevel.Information, "Change feed {Feed} copied {Count} existing row(s) of the followed tables.")]
    public static partial void RowsCopied(ILogger logger, string feed, long count);

    [LoggerMessage(7113, LogLevel.Warning, "Change feed {Feed}: slot loss acknowledged; dropped slot {Slot} and forgot position {Position}.")]
    public static partial void SlotLossAcknowledged(ILogger logger, string feed, string slot, string position);
}
