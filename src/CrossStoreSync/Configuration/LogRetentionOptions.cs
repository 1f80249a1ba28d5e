namespace CrossStoreSync.Configuration;

/// <summary>
/// How long the change log keeps applied entries, and how long stores keep tombstones and the log keeps dead letters
/// (<see cref="CrossStoreSyncOptions.Retention"/>). Validated at start-up with the other options.
/// </summary>
/// <remarks>
/// An entry is removed once it is at or below the low-water mark — the lowest of every store's cursor, every unfinished
/// migration's start position, every pending write and every registered <see cref="Log.ILogRetentionHolder"/> — and
/// older than <see cref="KeepAppliedFor"/>. See docs/architecture.md, "Log retention".
/// </remarks>
public sealed class LogRetentionOptions
{
    /// <summary>
    /// Whether the background task truncates the log, purges tombstones and removes old dead letters. When false it only
    /// measures (metrics, warnings, health). <value>Default true.</value>
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How long an entry every store has applied stays in the log before it may be removed, measured from when it was
    /// appended. <value>Default 1 hour.</value>
    /// </summary>
    public TimeSpan KeepAppliedFor { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often the retention task runs a round (truncation, tombstones, dead letters). <value>Default 30 s.</value></summary>
    public TimeSpan TruncationInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The most entries (or tombstones, or dead letters) removed in one transaction, so writers never wait long behind a
    /// removal. <value>Default 1,000.</value>
    /// </summary>
    public int TruncationBatchSize { get; set; } = 1000;

    /// <summary>
    /// The most entries the log may retain for a replica that stays behind. Null (the default) lets a replica that is
    /// down hold the log back for as long as it is down. When set, a replica that is more than this many entries behind
    /// and has not applied entries older than <see cref="KeepAppliedFor"/> is cut off: the log is truncated past its
    /// cursor, it is marked as needing a rebuild, its dispatcher stops, and a backfill through
    /// <see cref="Migration.IMigrationManager"/> brings it back. Entries held only by age (every store applied them) are
    /// removed past this cap too. Migrations and retention holders are never cut off. At least
    /// <see cref="CrossStoreSyncOptions.DispatchBatchSize"/>. <value>Default null.</value>
    /// </summary>
    public long? MaxRetainedEntries { get; set; }

    /// <summary>
    /// Like <see cref="MaxRetainedEntries"/>, in bytes of retained entries (estimated by the log from the size of its
    /// newest entries). At least <see cref="CrossStoreSyncOptions.MaxEntityBytes"/>. <value>Default null.</value>
    /// </summary>
    public long? MaxRetainedBytes { get; set; }

    /// <summary>
    /// Retained entries beyond which the health check reports unhealthy (a replica or holder holds the log back).
    /// <value>Default 10,000,000.</value>
    /// </summary>
    public long UnhealthyRetainedEntries { get; set; } = 10_000_000;

    /// <summary>
    /// How long a delete's tombstone is kept in every store (source included) before it may be purged; it is purged only
    /// once no change still to be applied anywhere is older than it. Must exceed how late a change can arrive (a peer
    /// offline, a clock behind): an older change arriving after the purge would bring the entity back.
    /// <value>Default 7 days.</value>
    /// </summary>
    public TimeSpan TombstoneRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a dead letter is kept unless it is replayed first. <value>Default 30 days.</value></summary>
    public TimeSpan DeadLetterRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Whether a replica cut off by <see cref="MaxRetainedEntries"/> (or found behind the truncated log at start-up) is
    /// rebuilt at once: a backfill from the source through <see cref="Migration.IMigrationManager"/>, then a consistency
    /// check, a repair of what still differs (entities deleted while it was away) and a second check. When false it
    /// waits for the application to run that migration. <value>Default false.</value>
    /// </summary>
    public bool RebuildAutomatically { get; set; }
}
