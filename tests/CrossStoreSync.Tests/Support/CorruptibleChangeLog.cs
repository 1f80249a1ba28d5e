using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Tests.Support;

/// <summary>Delegates to a real log, but reports the record at <see cref="CorruptLsn"/> as failing its checksum when read.</summary>
internal sealed class CorruptibleChangeLog(IChangeLog inner) : IChangeLog
{
    private long _corruptLsn;

    /// <summary>The LSN whose record is corrupted, or 0 for none. Set it back to 0 to "repair" the log.</summary>
    public long CorruptLsn
    {
        get => Interlocked.Read(ref _corruptLsn);
        set => Interlocked.Exchange(ref _corruptLsn, value);
    }

    public async ValueTask<LogReadResult> ReadCommittedAsync(long afterLsn, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken)
    {
        var start = destination.Count;
        var result = await inner.ReadCommittedAsync(afterLsn, maxCount, destination, cancellationToken);
        var corrupt = CorruptLsn;
        if (corrupt > afterLsn && corrupt <= result.ReadThrough)
        {
            destination.RemoveRange(start, destination.Count - start);
            throw new ChangeLogCorruptedException($"Record {corrupt} failed its checksum.", corrupt, "checksum");
        }

        return result;
    }

    public ValueTask InitializeAsync(CancellationToken cancellationToken) => inner.InitializeAsync(cancellationToken);

    public ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, CancellationToken cancellationToken) => inner.AppendAsync(changes, state, cancellationToken);

    public ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken) => inner.SetStateAsync(range, state, cancellationToken);

    public ValueTask<IReadOnlyList<LogRecord>> ReadPendingAsync(CancellationToken cancellationToken) => inner.ReadPendingAsync(cancellationToken);

    public ValueTask<long> GetLastLsnAsync(CancellationToken cancellationToken) => inner.GetLastLsnAsync(cancellationToken);

    public ValueTask<HlcTimestamp> GetMaxVersionAsync(CancellationToken cancellationToken) => inner.GetMaxVersionAsync(cancellationToken);

    public ValueTask<LogRecord?> GetLastEntryForKeyAsync(EntityKey key, CancellationToken cancellationToken) => inner.GetLastEntryForKeyAsync(key, cancellationToken);

    public ValueTask<long> GetCursorAsync(string store, CancellationToken cancellationToken) => inner.GetCursorAsync(store, cancellationToken);

    public ValueTask SetCursorAsync(string store, long lsn, CancellationToken cancellationToken) => inner.SetCursorAsync(store, lsn, cancellationToken);

    public ValueTask<string?> GetCheckpointAsync(string name, CancellationToken cancellationToken) => inner.GetCheckpointAsync(name, cancellationToken);

    public ValueTask SetCheckpointAsync(string name, string? value, CancellationToken cancellationToken) => inner.SetCheckpointAsync(name, value, cancellationToken);

    public ValueTask<IReadOnlyList<string>> ListCheckpointsAsync(string prefix, CancellationToken cancellationToken) => inner.ListCheckpointsAsync(prefix, cancellationToken);

    public ValueTask AddDeadLetterAsync(string store, LogRecord record, string reason, DateTimeOffset at, CancellationToken cancellationToken) => inner.AddDeadLetterAsync(store, record, reason, at, cancellationToken);

    public ValueTask<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? store, int maxCount, CancellationToken cancellationToken) => inner.ListDeadLettersAsync(store, maxCount, cancellationToken);

    public ValueTask<DeadLetter?> GetDeadLetterAsync(string store, EntityKey key, CancellationToken cancellationToken) => inner.GetDeadLetterAsync(store, key, cancellationToken);

    public ValueTask<int> CountDeadLettersAsync(LsnRange range, CancellationToken cancellationToken) => inner.CountDeadLettersAsync(range, cancellationToken);

    public ValueTask<bool> RemoveDeadLetterAsync(long id, CancellationToken cancellationToken) => inner.RemoveDeadLetterAsync(id, cancellationToken);
}
