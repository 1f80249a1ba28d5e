using CrossStoreSync.Model;

namespace CrossStoreSync.Log;

/// <summary>
/// A change log whose applied entries and old dead letters can be removed (log retention). The engine's retention task
/// decides what may go — below every store's cursor, every unfinished migration and every
/// <see cref="ILogRetentionHolder"/>, and older than <see cref="Configuration.LogRetentionOptions.KeepAppliedFor"/> — and
/// calls <see cref="TruncateAsync"/> in small batches. Implementations must be thread-safe.
/// </summary>
/// <remarks>
/// After a truncation the log must keep numbering after its highest LSN ever assigned, even when every entry is gone:
/// <see cref="IChangeLog.GetLastLsnAsync"/> never goes back.
/// </remarks>
public interface IChangeLogRetention : IChangeLog
{
    /// <summary>The highest LSN removed: every entry at or below it is gone (0 when nothing was removed).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<long> GetTruncatedThroughAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Removes up to <paramref name="maxCount"/> of the oldest entries at or below <paramref name="throughLsn"/>, and
    /// records the new truncation point in the same transaction. One call is one short transaction.
    /// </summary>
    /// <param name="throughLsn">The highest LSN that may be removed; the caller guarantees no one needs it any more.</param>
    /// <param name="maxCount">The most entries to remove in this call.</param>
    /// <param name="cancellationToken">Cancels the call before it commits.</param>
    /// <returns>How many entries were removed and the truncation point afterwards.</returns>
    ValueTask<LogTruncation> TruncateAsync(long throughLsn, int maxCount, CancellationToken cancellationToken);

    /// <summary>How many entries the log holds and an estimate of the space they take.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<LogRetainedSize> GetRetainedSizeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The oldest version among the entries after <paramref name="afterLsn"/>, or null when there are none. A tombstone
    /// older than it cannot be contradicted by any entry a store still has to apply.
    /// </summary>
    /// <param name="afterLsn">The position.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<HlcTimestamp?> GetOldestVersionAfterAsync(long afterLsn, CancellationToken cancellationToken);

    /// <summary>Removes up to <paramref name="maxCount"/> of the oldest dead letters recorded before <paramref name="before"/>.</summary>
    /// <param name="before">Dead letters created before this instant go.</param>
    /// <param name="maxCount">The most to remove in this call.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The dead letters removed, per store.</returns>
    ValueTask<IReadOnlyDictionary<string, int>> RemoveDeadLettersAsync(DateTimeOffset before, int maxCount, CancellationToken cancellationToken);

    /// <summary>Counts the stored dead letters per store.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyDictionary<string, long>> CountDeadLettersByStoreAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Gives the space freed by removals back to the file system where the database does not do it by itself (SQLite's
    /// incremental vacuum); returns without work where it does (PostgreSQL's autovacuum).
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask CompactAsync(CancellationToken cancellationToken);
}

/// <summary>The result of <see cref="IChangeLogRetention.TruncateAsync"/>.</summary>
/// <param name="Removed">Entries removed by the call.</param>
/// <param name="TruncatedThrough">Every entry at or below this LSN is gone.</param>
public readonly record struct LogTruncation(long Removed, long TruncatedThrough);

/// <summary>What the log retains.</summary>
/// <param name="Entries">Entries held (from the truncation point to the last LSN).</param>
/// <param name="Bytes">An estimate of the storage they take, in bytes.</param>
public readonly record struct LogRetainedSize(long Entries, long Bytes);
