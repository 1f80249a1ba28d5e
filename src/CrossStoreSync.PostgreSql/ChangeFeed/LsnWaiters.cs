namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>Tasks that complete when a monotonically advancing LSN reaches their target, or fail with the feed's fault.</summary>
internal sealed class LsnWaiters
{
    private readonly List<(ulong Target, TaskCompletionSource Done)> _waiting = [];
    private readonly Lock _lock = new();
    private ulong _value;
    private Exception? _fault;

    public ulong Value
    {
        get
        {
            lock (_lock)
            {
                return _value;
            }
        }
    }

    /// <summary>A task that completes once the value reaches <paramref name="target"/>.</summary>
    public Task WaitAsync(ulong target)
    {
        lock (_lock)
        {
            if (_value >= target)
            {
                return Task.CompletedTask;
            }

            if (_fault is not null)
            {
                return Task.FromException(_fault);
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Add((target, done));
            return done.Task;
        }
    }

    public void Advance(ulong value)
    {
        lock (_lock)
        {
            if (value <= _value)
            {
                return;
            }

            _value = value;
            for (var i = _waiting.Count - 1; i >= 0; i--)
            {
                if (_waiting[i].Target <= value)
                {
                    _waiting[i].Done.TrySetResult();
                    _waiting.RemoveAt(i);
                }
            }
        }
    }

    public void Fail(Exception fault)
    {
        lock (_lock)
        {
            _fault = fault;
            foreach (var (_, done) in _waiting)
            {
                done.TrySetException(fault);
            }

            _waiting.Clear();
        }
    }
}
