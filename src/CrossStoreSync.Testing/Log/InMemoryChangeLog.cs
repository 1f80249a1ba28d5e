using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Testing.Log;

/// <summary>
/// A change log held in memory: ordered, with cursors and dead letters, but not durable. For tests and benchmarks;
/// never register it in production, where a crash would lose every unapplied change. Thread-safe.
/// </summary>
public sealed class InMemoryChangeLog : IChangeLog
{
    private readonly Lock _gate = new();
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<EntityKey, long> _lastByKey = [];
    private readonly Dictionary<string, long> _cursors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _checkpoints = new(StringComparer.Ordinal);
    private readonly List<DeadLetter> _deadLetters = [];
    private long _nextDeadLetterId = 1;
    private HlcTimestamp _maxVersion;

    /// <summary>Number of entries appended.</summary>
    public long Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

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
            var first = _entries.Count + 1L;
            foreach (var change in changes)
            {
                var lsn = _entries.Count + 1L;
                _entries.Add(new Entry(change, state == LogEntryState.Pending ? null : new LogRecord(lsn, change, state)));
                _lastByKey[change.Key] = lsn;
                if (change.Version > _maxVersion)
                {
                    _maxVersion = change.Version;
                }
            }

            return ValueTask.FromResult(new LsnRange(first, _entries.Count));
        }
    }

    /// <inheritdoc />
    public ValueTask SetStateAsync(LsnRange range, LogEntryState state, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            for (var lsn = range.First; lsn <= range.Last && lsn <= _entries.Count; lsn++)
            {
                var entry = _entries[(int)(lsn - 1)];
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
            var lsn = afterLsn;
            var read = 0;
            while (lsn < _entries.Count && read < maxCount)
            {
                var record = _entries[(int)lsn].Record;
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
                    pending.Add(new LogRecord(i + 1, _entries[i].Change, LogEntryState.Pending));
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
            return ValueTask.FromResult((long)_entries.Count);
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
            if (!_lastByKey.TryGetValue(key, out var lsn))
            {
                return ValueTask.FromResult<LogRecord?>(null);
            }

            var entry = _entries[(int)(lsn - 1)];
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

    private sealed class Entry(EntityChange change, LogRecord? record)
    {
        public EntityChange Change { get; } = change;

        /// <summary>Null while pending; created once when the entry is committed or aborted, then shared by every reader.</summary>
        public LogRecord? Record { get; set; } = record;
    }
}
