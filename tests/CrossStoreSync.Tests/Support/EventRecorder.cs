using CrossStoreSync.Sync;

namespace CrossStoreSync.Tests.Support;

/// <summary>Subscribes to the engine's event stream and lets a test wait for an event matching a condition.</summary>
internal sealed class EventRecorder : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly List<SyncEvent> _events = [];
    private readonly List<(Func<SyncEvent, bool> Match, TaskCompletionSource<SyncEvent> Done)> _waiters = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public EventRecorder(ISyncManager manager)
    {
        // SubscribeAsync registers at once, so nothing published after this constructor returns is missed.
        var stream = manager.SubscribeAsync(_stop.Token);
        _loop = Task.Run(() => ReadAsync(stream));
    }

    public IReadOnlyList<SyncEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    public async Task<SyncEvent> WaitForAsync(Func<SyncEvent, bool> match, string what)
    {
        TaskCompletionSource<SyncEvent> done;
        lock (_gate)
        {
            foreach (var e in _events)
            {
                if (match(e))
                {
                    return e;
                }
            }

            done = new TaskCompletionSource<SyncEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, done));
        }

        try
        {
            return await done.Task.WaitAsync(TestEngine.Timeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"No event '{what}' within {TestEngine.Timeout}; seen: {string.Join("; ", Events)}");
            throw;
        }
    }

    private async Task ReadAsync(IAsyncEnumerable<SyncEvent> stream)
    {
        try
        {
            await foreach (var e in stream)
            {
                lock (_gate)
                {
                    _events.Add(e);
                    for (var i = _waiters.Count - 1; i >= 0; i--)
                    {
                        if (_waiters[i].Match(e))
                        {
                            _waiters[i].Done.TrySetResult(e);
                            _waiters.RemoveAt(i);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
