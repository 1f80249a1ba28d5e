using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Log;

/// <summary>The state of a log entry.</summary>
public enum LogEntryState
{
    /// <summary>Appended; the source of truth has not confirmed it yet. Replicas never read past a pending entry.</summary>
    Pending = 0,

    /// <summary>The source of truth holds the change; replicas apply it.</summary>
    Committed = 1,

    /// <summary>The source of truth rejected the change; no replica ever applies it.</summary>
    Aborted = 2,
}

/// <summary>One change log entry.</summary>
/// <param name="Lsn">The log sequence number (positive, increasing).</param>
/// <param name="Change">The change.</param>
/// <param name="State">The entry's state.</param>
public sealed record LogRecord(long Lsn, EntityChange Change, LogEntryState State);

/// <summary>An inclusive range of sequence numbers assigned to one append.</summary>
/// <param name="First">The first LSN.</param>
/// <param name="Last">The last LSN.</param>
public readonly record struct LsnRange(long First, long Last)
{
    /// <summary>The number of entries.</summary>
    public long Count => Last - First + 1;
}

/// <summary>The result of <see cref="IChangeLog.ReadCommittedAsync"/>.</summary>
/// <param name="ReadThrough">The LSN a cursor may advance to: every entry up to it was returned or is aborted.
/// Equal to the <c>afterLsn</c> argument when nothing new can be read.</param>
/// <param name="BlockedByPending">True when reading stopped at a pending entry.</param>
public readonly record struct LogReadResult(long ReadThrough, bool BlockedByPending);

/// <summary>A change that a store rejected permanently, set aside so the rest of the log keeps flowing.</summary>
/// <param name="Id">The dead letter's id.</param>
/// <param name="Store">The store that rejected it.</param>
/// <param name="Lsn">The LSN of the change.</param>
/// <param name="Key">The entity.</param>
/// <param name="Kind">Upsert or delete.</param>
/// <param name="Version">The change's version.</param>
/// <param name="Reason">The store's error message.</param>
/// <param name="CreatedAt">When it was dead-lettered.</param>
public sealed record DeadLetter(long Id, string Store, long Lsn, EntityKey Key, ChangeKind Kind, HlcTimestamp Version, string Reason, DateTimeOffset CreatedAt);

/// <summary>
/// The durable, ordered change log with per-store cursors and dead letters. Implementations must be safe for
/// concurrent callers.
/// </summary>
public interface IChangeLog
{
    /// <summary>Creates the schema and checks the log can be used. Idempotent.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Appends changes durably (persisted before the returned task completes) with consecutive LSNs.
    /// </summary>
    /// <param name="changes">The changes, at least one.</param>
    /// <param name="state">The initial state: <see cref="LogEntryState.Pending"/> for app writes whose source write follows,
    /// <see cref="LogEntryState.Committed"/> for changes already held by the source (repair, replay, change feeds).</param>
    /// <param name="cancellationToken">Cancels the operation before the append is durable.</param>
    ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, CancellationToken cancellationToken);

    /// <summary>Moves the entries of <paramref name="range"/> from pending to <paramref name="state"/>.</summary>
    ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken);

    /// <summary>
    /// Reads up to <paramref name="maxCount"/> committed entries after <paramref name="afterLsn"/> into
    /// <paramref name="destination"/>, in LSN order, skipping aborted entries and stopping before the first pending one.
    /// </summary>
    /// <exception cref="Errors.ChangeLogCorruptedException">A record failed its checksum.</exception>
    ValueTask<LogReadResult> ReadCommittedAsync(long afterLsn, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken);

    /// <summary>Reads every pending entry (used to resolve them after a crash).</summary>
    ValueTask<IReadOnlyList<LogRecord>> ReadPendingAsync(CancellationToken cancellationToken);

    /// <summary>The highest LSN appended so far (0 when empty).</summary>
    ValueTask<long> GetLastLsnAsync(CancellationToken cancellationToken);

    /// <summary>The newest version in the log, so a restarted clock never issues older versions.</summary>
    ValueTask<HlcTimestamp> GetMaxVersionAsync(CancellationToken cancellationToken);

    /// <summary>The newest entry for a key, or null when the log holds none.</summary>
    ValueTask<LogRecord?> GetLastEntryForKeyAsync(EntityKey key, CancellationToken cancellationToken);

    /// <summary>The durable cursor of a store: every entry up to it was applied or dead-lettered (0 when new).</summary>
    ValueTask<long> GetCursorAsync(string store, CancellationToken cancellationToken);

    /// <summary>Saves a store's cursor.</summary>
    ValueTask SetCursorAsync(string store, long lsn, CancellationToken cancellationToken);

    /// <summary>
    /// Reads a named checkpoint: the small, durable state a long operation (a migration) saves so that it can resume
    /// after a crash. Null when there is none.
    /// </summary>
    ValueTask<string?> GetCheckpointAsync(string name, CancellationToken cancellationToken);

    /// <summary>Saves a named checkpoint durably, replacing the previous value; a null value deletes it.</summary>
    ValueTask SetCheckpointAsync(string name, string? value, CancellationToken cancellationToken);

    /// <summary>Lists the names of the checkpoints that start with <paramref name="prefix"/>, in ordinal order.</summary>
    ValueTask<IReadOnlyList<string>> ListCheckpointsAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Records a dead letter.</summary>
    ValueTask AddDeadLetterAsync(string store, LogRecord record, string reason, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Lists dead letters, oldest first, optionally for one store.</summary>
    ValueTask<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? store, int maxCount, CancellationToken cancellationToken);

    /// <summary>The newest dead letter of a key in a store, or null.</summary>
    ValueTask<DeadLetter?> GetDeadLetterAsync(string store, EntityKey key, CancellationToken cancellationToken);

    /// <summary>Counts the dead letters whose LSN is in <paramref name="range"/>.</summary>
    ValueTask<int> CountDeadLettersAsync(LsnRange range, CancellationToken cancellationToken);

    /// <summary>Removes a dead letter; returns false when it did not exist.</summary>
    ValueTask<bool> RemoveDeadLetterAsync(long id, CancellationToken cancellationToken);
}

/// <summary>
/// A change log that lives in the same database as the source of truth, so appending a change and writing it to the
/// source commit in one transaction (DESIGN.md §3): there is no window in which one exists without the other.
/// </summary>
public interface ISourceCoupledChangeLog : IChangeLog
{
    /// <summary>The source of truth this log commits with, or null when this log is used with a source elsewhere (it then
    /// works as a plain <see cref="IChangeLog"/>: pending entries committed after the source write).</summary>
    IDocumentStore? CoupledSource { get; }

    /// <summary>
    /// Writes the changes to the source and appends them as committed entries, atomically and durably. If the source
    /// rejects them, nothing is written and the store's exception is thrown.
    /// </summary>
    /// <param name="changes">The changes, at least one; keys distinct.</param>
    /// <param name="checkpoint">A checkpoint saved in the same transaction (a change feed's position), or null.</param>
    /// <param name="cancellationToken">Cancels the operation before it commits.</param>
    ValueTask<LsnRange> AppendAndApplyAsync(IReadOnlyList<EntityChange> changes, LogCheckpoint? checkpoint, CancellationToken cancellationToken);
}

/// <summary>A named checkpoint value saved together with a log append (see <see cref="IChangeLog.SetCheckpointAsync"/>).</summary>
/// <param name="Name">The checkpoint's name.</param>
/// <param name="Value">Its new value.</param>
public readonly record struct LogCheckpoint(string Name, string Value);
