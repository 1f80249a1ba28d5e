namespace CrossStoreSync.FaultProxy;

/// <summary>
/// The faults of one direction of a proxy (blackhole and delay), shared by all its connections so a change takes
/// effect on open and new connections alike. Thread-safe.
/// </summary>
internal sealed class LinkFaults
{
    private readonly Lock _lock = new();

    // Non-null while blackholed; completed (and replaced by null) on heal, which releases every waiting writer at once.
    private TaskCompletionSource? _healed;
    private long _delayTicks;

    public bool IsBlackholed => Volatile.Read(ref _healed) is not null;

    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks));
        set => Interlocked.Exchange(ref _delayTicks, value.Ticks);
    }

    public void Blackhole()
    {
        lock (_lock)
        {
            if (_healed is null)
            {
                // Continuations run asynchronously so Heal() never runs connection code on the caller's thread.
                Volatile.Write(ref _healed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            }
        }
    }

    public void Heal()
    {
        TaskCompletionSource? healed;
        lock (_lock)
        {
            healed = _healed;
            Volatile.Write(ref _healed, null);
        }

        healed?.TrySetResult();
    }

    /// <summary>Completes when the direction is open; synchronously (no allocation) when it already is.</summary>
    public async ValueTask WaitOpenAsync(CancellationToken cancellationToken)
    {
        // A loop, not one wait: a heal immediately followed by a new blackhole must hold the writer again.
        while (Volatile.Read(ref _healed) is { } healed)
        {
            await healed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
