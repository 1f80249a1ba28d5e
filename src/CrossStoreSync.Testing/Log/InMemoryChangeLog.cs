using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Testing.Log;

/// <summary>
/// A change log held in memory: ordered, with cursors and dead letters, but not durable. For tests and benchmarks;
/// never register it in production, where a crash would lose every unapplied change. Thread-safe.
/// </summary>
public sealed partial class InMemoryChangeLog : IChangeLogRetention
{
    private readonly Lock _gate = new();
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<EntityKey, long> _lastByKey = [];
    private readonly Dictionary<string, long> _cursors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _checkpoints = new(StringComparer.Ordinal);
    private readonly List<DeadLetter> _deadLetters = [];
    private long _nextDeadLetterId = 1;
    private HlcTimestamp _maxVersion;

    // Entries at or below this LSN were truncated; _entries[i] holds LSN _truncated + i + 1.
    private long _truncated;

    /// <summary>Number of entries appended (truncated ones included).</summary>
    public long Count
    {
        get
        {
            lock (_gate)
            {
                return Last;
            }
        }
    }

    /// <summary>Number of entries held now (appended minus truncated).</summary>
    public long Retained
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    private long Last => _truncated + _entries.Count;

    /// <inheritdoc />
    public ValueTask InitializeAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            return ValueTask.FromResult(AppendLocked(changes, state));
        }
    }

    private LsnRange AppendLocked(IReadOnlyList<EntityChange> changes, LogEntryState state)
    {
        var first = Last + 1;
        foreach (var change in changes)
        {
            var lsn = Last + 1;
            _entries.Add(new Entry(change, state == LogEntryState.Pending ? null : new LogRecord(lsn, change, state)));
            _lastByKey[change.Key] = lsn;
            if (change.Version > _maxVersion)
            {
                _maxVersion = change.Version;
            }
        }

        return new LsnRange(first, Last);
    }

    /// <inheritdoc />
    public ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            for (var lsn = Math.Max(range.First, _truncated + 1); lsn <= range.Last && lsn <= Last; lsn++)
            {
                var entry = _entries[(int)(lsn - _truncated - 1)];
                if (entry.Record is null)
                {
                    entry.Record = new LogRecord(lsn, entry.Change, state);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<LogReadResult> ReadCommittedAsync(long afterLsn, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        lock (_gate)
        {
            // Truncated entries are gone: a read from below the truncation point starts after it.
            var lsn = Math.Max(afterLsn, _truncated);
            var read = 0;
            while (lsn < Last && read < maxCount)
            {
                var record = _entries[(int)(lsn - _truncated)].Record;
                if (record is null)
                {
                    return ValueTask.FromResult(new LogReadResult(lsn, true));
                }

                lsn++;
                if (record.State == LogEntryState.Committed)
                {
                    destination.Add(record);
                    read++;
                }
            }

            return ValueTask.FromResult(new LogReadResult(lsn, false));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LogRecord>> ReadPendingAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var pending = new List<LogRecord>();
            for (var i = 0; i < _entries.Count; i++)
            {
                if (_entries[i].Record is null)
                {
                    pending.Add(new LogRecord(_truncated + i + 1, _entries[i].Change, LogEntryState.Pending));
                }
            }

            return ValueTask.FromResult<IReadOnlyList<LogRecord>>(pending);
        }
    }

    /// <inheritdoc />
    public ValueTask<long> GetLastLsnAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(Last);
        }
    }

    /// <inheritdoc />
    public ValueTask<HlcTimestamp> GetMaxVersionAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_maxVersion);
        }
    }

    /// <inheritdoc />
    public ValueTask<LogRecord?> GetLastEntryForKeyAsync(EntityKey key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_lastByKey.TryGetValue(key, out var lsn) || lsn <= _truncated)
            {
                return ValueTask.FromResult<LogRecord?>(null);
            }

            var entry = _entries[(int)(lsn - _truncated - 1)];
            return ValueTask.FromResult<LogRecord?>(entry.Record ?? new LogRecord(lsn, entry.Change, LogEntryState.Pending));
        }
    }

    /// <inheritdoc />
    public ValueTask<long> GetCursorAsync(string store, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_cursors.GetValueOrDefault(store));
        }
    }

    /// <inheritdoc />
    public ValueTask SetCursorAsync(string store, long lsn, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _cursors[store] = lsn;
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<string?> GetCheckpointAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate)
        {
            return ValueTask.FromResult(_checkpoints.GetValueOrDefault(name));
        }
    }

    /// <inheritdoc />
    public ValueTask SetCheckpointAsync(string name, string? value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate)
        {
            if (value is null)
            {
                _checkpoints.Remove(name);
            }
            else
            {
                _checkpoints[name] = value;
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>> ListCheckpointsAsync(string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>(_checkpoints.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray());
        }
    }

    /// <inheritdoc />
    public ValueTask AddDeadLetterAsync(string store, LogRecord record, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_gate)
        {
            _deadLetters.Add(new DeadLetter(_nextDeadLetterId++, store, record.Lsn, record.Change.Key, record.Change.Kind, record.Change.Version, reason, at));
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? store, int maxCount, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var result = _deadLetters.Where(d => store is null || d.Store == store).Take(maxCount).ToArray();
            return ValueTask.FromResult<IReadOnlyList<DeadLetter>>(result);
        }
    }

    /// <inheritdoc />
    public ValueTask<DeadLetter?> GetDeadLetterAsync(string store, EntityKey key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_deadLetters.LastOrDefault(d => d.Store == store && d.Key == key));
        }
    }

    /// <inheritdoc />
    public ValueTask<int> CountDeadLettersAsync(LsnRange range, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_deadLetters.Count(d => d.Lsn >= range.First && d.Lsn <= range.Last));
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveDeadLetterAsync(long id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_deadLetters.RemoveAll(d => d.Id == id) > 0);
        }
    }

    /// <inheritdoc />
    public ValueTask<long> GetTruncatedThroughAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_truncated);
        }
    }

    /// <inheritdoc />
    public ValueTask<LogTruncation> TruncateAsync(long throughLsn, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var count = (int)Math.Clamp(Math.Min(throughLsn, Last) - _truncated, 0, maxCount);
            for (var i = 0; i < count; i++)
            {
                var change = _entries[i].Change;
                if (_lastByKey.TryGetValue(change.Key, out var last) && last == _truncated + i + 1)
                {
                    _lastByKey.Remove(change.Key);
                }
            }

            _entries.RemoveRange(0, count);
            _truncated += count;
            return ValueTask.FromResult(new LogTruncation(count, _truncated));
        }
    }

    /// <inheritdoc />
    /// <remarks>Bytes are the encoded size of the entities held (an in-memory log has no storage of its own).</remarks>
    public ValueTask<LogRetainedSize> GetRetainedSizeAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            long bytes = 0;
            foreach (var entry in _entries)
            {
                bytes += 64 + (entry.Change.Entity is { } entity ? entity.Document.Length + (entity.Vector.Length * 4) : 0);
            }

            return ValueTask.FromResult(new LogRetainedSize(_entries.Count, bytes));
        }
    }

    /// <inheritdoc />
    public ValueTask<HlcTimestamp?> GetOldestVersionAfterAsync(long afterLsn, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            HlcTimestamp? oldest = null;
            for (var i = (int)Math.Clamp(afterLsn - _truncated, 0, _entries.Count); i < _entries.Count; i++)
            {
                var version = _entries[i].Change.Version;
                if (oldest is null || version < oldest)
                {
                    oldest = version;
                }
            }

            return ValueTask.FromResult(oldest);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, int>> RemoveDeadLettersAsync(DateTimeOffset before, int maxCount, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var removed = new Dictionary<string, int>(StringComparer.Ordinal);
            var expired = _deadLetters.Where(d => d.CreatedAt < before).Take(maxCount).ToArray();
            foreach (var letter in expired)
            {
                _deadLetters.Remove(letter);
                removed[letter.Store] = removed.GetValueOrDefault(letter.Store) + 1;
            }

            return ValueTask.FromResult<IReadOnlyDictionary<string, int>>(removed);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, long>> CountDeadLettersByStoreAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var letter in _deadLetters)
            {
                counts[letter.Store] = counts.GetValueOrDefault(letter.Store) + 1;
            }

            return ValueTask.FromResult<IReadOnlyDictionary<string, long>>(counts);
        }
    }

    /// <inheritdoc />
    /// <remarks>Memory is released as entries are removed; nothing to do.</remarks>
    public ValueTask CompactAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Entry(EntityChange change, LogRecord? record)
    {
        public EntityChange Change { get; } = change;

        /// <summary>Null while pending; created once when the entry is committed or aborted, then shared by every reader.</summary>
        public LogRecord? Record { get; set; } = record;
    }
}
