using CrossStoreSync.Errors;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>The PostgreSQL change feed cannot go on: misconfiguration, a mapping that failed, or a lost slot.</summary>
public class PostgresChangeFeedException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What happened and what to do.</param>
    /// <param name="feed">The feed's name (<see cref="PostgresChangeFeedOptions.FeedName"/>).</param>
    /// <param name="operation">The operation that failed (for example <c>start</c>, <c>map</c>, <c>write</c>).</param>
    /// <param name="innerException">The cause, if any.</param>
    public PostgresChangeFeedException(string message, string feed, string operation, Exception? innerException = null)
        : base(message, feed, null, operation, innerException)
    {
    }
}

/// <summary>Why a replication slot can no longer deliver every change since the feed's saved position.</summary>
public enum PostgresSlotLossReason
{
    /// <summary>The slot does not exist although the feed saved a position from it (dropped while the feed was down).</summary>
    Missing = 0,

    /// <summary>The server removed WAL the slot still needed (<c>wal_status = 'lost'</c>, see <c>max_slot_wal_keep_size</c>).</summary>
    WalRemoved = 1,

    /// <summary>
    /// The slot's confirmed position is beyond what this feed ever confirmed: it was recreated, advanced by hand
    /// (<c>pg_replication_slot_advance</c>) or consumed by another client.
    /// </summary>
    AdvancedElsewhere = 2,
}

/// <summary>
/// The feed's replication slot cannot deliver every change since the feed's saved position, so changes made in the
/// followed tables may be missing from every store. The feed does not recreate the slot on its own, because that
/// would silently skip those changes.
/// </summary>
/// <remarks>
/// Recovery (docs/postgres-cdc.md): call <see cref="PostgresChangeFeed.AcknowledgeSlotLossAsync"/> (drops the broken
/// slot, creates a fresh one so nothing from now on is missed); start the feed, which copies the tables' current rows
/// when <see cref="PostgresChangeFeedOptions.CopyExistingRows"/> is on, and delete the entities whose rows were deleted
/// meanwhile; backfill each replica from the source with <see cref="Migration.IMigrationManager.RunAsync"/>; finish
/// with <see cref="Consistency.IConsistencyChecker.CheckAsync"/> (and repair) on every collection.
/// </remarks>
public sealed class PostgresReplicationSlotLostException : PostgresChangeFeedException
{
    /// <summary>Creates the exception.</summary>
    public PostgresReplicationSlotLostException(string message, string feed, string slotName, PostgresSlotLossReason reason, string? savedPosition)
        : base(message, feed, "start")
    {
        SlotName = slotName;
        Reason = reason;
        SavedPosition = savedPosition;
    }

    /// <summary>The slot.</summary>
    public string SlotName { get; }

    /// <summary>What happened to it.</summary>
    public PostgresSlotLossReason Reason { get; }

    /// <summary>The position the feed had saved, when there was one.</summary>
    public string? SavedPosition { get; }
}
