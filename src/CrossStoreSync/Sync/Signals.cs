namespace CrossStoreSync.Sync;

/// <summary>An auto-reset wake-up for a background loop: many <see cref="Set"/> calls collapse into one wake-up.</summary>
internal sealed class WakeSignal
{
    private readonly SemaphoreSlim _semaphore = new(0);

    public void Set()
    {
        // A race can release twice; the loop then wakes once more and finds nothing, which is harmless.
        if (_semaphore.CurrentCount == 0)
        {
            _semaphore.Release();
        }
    }

    /// <summary>Waits for a wake-up or the timeout; returns true when woken.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _semaphore.WaitAsync(timeout, cancellationToken);
}

/// <summary>A monotonically increasing position (a store's cursor) that callers can wait on.</summary>
internal sealed class CursorWatch
{
    private long _value;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Value => Volatile.Read(ref _value);

    public void Advance(long value)
    {
        Volatile.Write(ref _value, value);
        Interlocked.Exchange(ref _advanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async ValueTask WaitForAsync(long target, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Read the signal before the value so an advance between the two cannot be missed.
            var advanced = Volatile.Read(ref _advanced).Task;
            if (Value >= target)
            {
                return;
            }

            await advanced.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
