using CrossStoreSync.Log;

namespace CrossStoreSync.Sqlite.Log;

/// <summary>
/// The most recent log records of this process, kept in memory after they commit so dispatchers that follow the head
/// of the log read them without a query and without decoding payloads again. A ring of power-of-two size indexed by
/// LSN; a slot whose LSN does not match is a miss, and the reader falls back to the database. Lock-free.
/// </summary>
internal sealed class LogTailCache
{
    private readonly LogRecord?[] _slots;
    private readonly long _mask;

    public LogTailCache(int capacity)
    {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "Capacity must be a power of two of at least 2.");
        }

        _slots = new LogRecord?[capacity];
        _mask = capacity - 1;
    }

    public void Put(LogRecord record) => Volatile.Write(ref _slots[record.Lsn & _mask], record);

    public LogRecord? Get(long lsn)
    {
        var record = Volatile.Read(ref _slots[lsn & _mask]);
        return record is not null && record.Lsn == lsn ? record : null;
    }

    /// <summary>Moves a cached pending record to its decided state (a decided record never changes again).</summary>
    public void Decide(long lsn, LogEntryState state)
    {
        if (Get(lsn) is { State: LogEntryState.Pending } record)
        {
            Put(record with { State = state });
        }
    }
}
