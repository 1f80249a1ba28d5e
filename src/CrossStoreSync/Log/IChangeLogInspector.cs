namespace CrossStoreSync.Log;

/// <summary>
/// Reads where the change log and every store stand from the log itself — its head, what it retains, each store's
/// durable cursor (every partition's, for a shared log), the oldest change each store has not applied, dead letters —
/// rather than from this process's dispatchers, so it reports on processes that dispatch elsewhere too. Registered by
/// <c>AddCrossStoreSync</c>; used by the <c>css</c> tool. Thread-safe; each call reads afresh.
/// </summary>
public interface IChangeLogInspector
{
    /// <summary>Reads the overview. Starts the engine if it has not started (initialising the log and stores).</summary>
    /// <param name="cancellationToken">Cancels the reads.</param>
    /// <returns>The overview.</returns>
    Task<ChangeLogOverview> GetOverviewAsync(CancellationToken cancellationToken = default);
}

/// <summary>What the change log holds and where every store stands.</summary>
/// <param name="Source">The source of truth's name.</param>
/// <param name="Head">The highest LSN appended (0 for an empty log).</param>
/// <param name="OldestLsn">The lowest LSN the log still holds, or null when it holds none.</param>
/// <param name="RetainedEntries">Entries the log holds: from <paramref name="OldestLsn"/> to <paramref name="Head"/> (LSNs are dense).</param>
/// <param name="PendingEntries">Entries whose source write is not confirmed yet (replicas never read past one).</param>
/// <param name="Partitions">The partition count of a shared log (PostgreSQL), or null.</param>
/// <param name="Stores">One entry per store, the source first.</param>
/// <param name="ReadAt">When it was read.</param>
public sealed record ChangeLogOverview(
    string Source,
    long Head,
    long? OldestLsn,
    long RetainedEntries,
    int PendingEntries,
    int? Partitions,
    IReadOnlyList<StoreCursorStatus> Stores,
    DateTimeOffset ReadAt);

/// <summary>Where one store stands, as the change log records it.</summary>
/// <param name="Store">The store's name.</param>
/// <param name="IsSource">True for the source of truth (its cursor is the head: it holds every committed change).</param>
/// <param name="Cursor">The durable cursor: every entry up to it was applied or dead-lettered (the lowest over partitions for a shared log).</param>
/// <param name="LagChanges">Entries after the cursor: <c>Head - Cursor</c>.</param>
/// <param name="OldestUnappliedAt">
/// When the oldest change the store has not applied was made (from its version's clock), or null when there is none;
/// the lag in time is <see cref="ChangeLogOverview.ReadAt"/> minus this.
/// </param>
/// <param name="DeadLetters">Dead letters recorded for the store (up to 10,000 counted).</param>
/// <param name="Fault">
/// Set when the next entry the store would read fails its checksum: its dispatcher stops there (faulted) until the
/// record is dealt with. The message of the corruption.
/// </param>
/// <param name="AwaitingBackfill">True for a replica listed in <c>ReplicasAwaitingBackfill</c> that has no cursor yet: it waits for a migration to fill it.</param>
/// <param name="PartitionCursors">Every partition's cursor of a shared log (index = partition), or null.</param>
public sealed record StoreCursorStatus(
    string Store,
    bool IsSource,
    long Cursor,
    long LagChanges,
    DateTimeOffset? OldestUnappliedAt,
    int DeadLetters,
    string? Fault,
    bool AwaitingBackfill,
    IReadOnlyList<long>? PartitionCursors)
{
    /// <summary>True when the store's dispatcher is stopped by a corrupted record.</summary>
    public bool Faulted => Fault is not null;
}
