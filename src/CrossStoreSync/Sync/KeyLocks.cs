using CrossStoreSync.Model;

namespace CrossStoreSync.Sync;

/// <summary>
/// Per-key asynchronous locks, created on demand and dropped when unused, so two operations on one key run one after
/// the other while operations on different keys never wait for each other. A caller holding several keys takes them in
/// key order, so two batches that share keys cannot deadlock. Thread-safe.
/// </summary>
internal sealed class KeyLocks
{
    private readonly Lock _gate = new();
    private readonly Dictionary<EntityKey, Entry> _entries = [];

    /// <summary>Takes the locks of every key of <paramref name="changes"/>; dispose the result to release them.</summary>
    public async ValueTask<Held> AcquireAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        var keys = new EntityKey[changes.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = changes[i].Key;
        }

        Array.Sort(keys);
        var held = new Held(this, keys.Length);
        try
        {
            for (var i = 0; i < keys.Length; i++)
            {
                if (i > 0 && keys[i] == keys[i - 1])
                {
                    continue;
                }

                var entry = Reference(keys[i]);
                try
                {
                    await entry.Semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    Release(keys[i], entry, wasHeld: false);
                    throw;
                }

                held.Add(keys[i], entry);
            }
        }
        catch
        {
            held.Dispose();
            throw;
        }

        return held;
    }

    /// <summary>Takes the lock of one key.</summary>
    public async ValueTask<Held> AcquireAsync(EntityKey key, CancellationToken cancellationToken)
    {
        var held = new Held(this, 1);
        var entry = Reference(key);
        try
        {
            await entry.Semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Release(key, entry, wasHeld: false);
            throw;
        }

        held.Add(key, entry);
        return held;
    }

    /// <summary>Keys with a lock entry right now (held or awaited); for tests.</summary>
    internal int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    private Entry Reference(EntityKey key)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                entry = new Entry();
                _entries[key] = entry;
            }

            entry.References++;
            return entry;
        }
    }

    private void Release(EntityKey key, Entry entry, bool wasHeld)
    {
        if (wasHeld)
        {
            entry.Semaphore.Release();
        }

        lock (_gate)
        {
            if (--entry.References == 0)
            {
                // Nobody holds or waits for it: drop it so the table holds only keys in use.
                _entries.Remove(key);
                entry.Semaphore.Dispose();
            }
        }
    }

    internal sealed class Entry
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);

        public int References { get; set; }
    }

    /// <summary>Locks held by one caller; disposing releases them in reverse order.</summary>
    internal sealed class Held(KeyLocks owner, int capacity) : IDisposable
    {
        private readonly List<(EntityKey Key, Entry Entry)> _held = new(capacity);

        public void Add(EntityKey key, Entry entry) => _held.Add((key, entry));

        public void Dispose()
        {
            for (var i = _held.Count - 1; i >= 0; i--)
            {
                owner.Release(_held[i].Key, _held[i].Entry, wasHeld: true);
            }

            _held.Clear();
        }
    }
}
