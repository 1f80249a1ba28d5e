using CrossStoreSync.Errors;
using CrossStoreSync.Model;

namespace CrossStoreSync.Testing.Faults;

/// <summary>
/// A fault plan shared by the fault-injecting store decorators: fail the Nth call, fail a key or chosen changes
/// permanently, hang until the caller's timeout, or be down for a while, optionally asking the caller to back off
/// (<see cref="SyncStoreException.RetryAfter"/>, as an HTTP <c>Retry-After</c> or a gRPC retry delay would). Faults apply
/// to <c>ApplyAsync</c>. Thread-safe; change it while the engine runs.
/// </summary>
public sealed class StoreFaults
{
    private readonly Lock _gate = new();
    private readonly Dictionary<EntityKey, string> _rejectedKeys = [];
    private readonly List<(Func<EntityChange, bool> Match, string Reason)> _rejectedChanges = [];
    private readonly SortedSet<long> _failingCalls = [];
    private readonly TimeProvider _time;
    private long _calls;
    private int _failNext;
    private bool _failNextTransient = true;
    private bool _down;
    private TimeSpan? _failNextRetryAfter;
    private TimeSpan? _downRetryAfter;
    private DateTimeOffset _downUntil;
    private TaskCompletionSource? _hang;

    /// <summary>Creates a plan that uses <paramref name="time"/> for <see cref="GoDownFor"/>.</summary>
    public StoreFaults(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>Calls seen so far.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Calls failed by this plan so far.</summary>
    public long InjectedFailures { get; private set; }

    /// <summary>Runs before every apply that the plan lets through (for example to kill the process at a chosen moment).</summary>
    public Func<IReadOnlyList<EntityChange>, ValueTask>? BeforeApply { get; set; }

    /// <summary>Fails the call with 1-based number <paramref name="callNumber"/>, counted from the plan's creation.</summary>
    public StoreFaults FailCall(long callNumber)
    {
        lock (_gate)
        {
            _failingCalls.Add(callNumber);
        }

        return this;
    }

    /// <summary>Fails the next <paramref name="count"/> calls, transiently (retried) or permanently.</summary>
    /// <param name="count">How many calls fail.</param>
    /// <param name="transient">True for a failure worth retrying.</param>
    /// <param name="retryAfter">The back-off the failures ask for (<see cref="SyncStoreException.RetryAfter"/>), or null for none.</param>
    public StoreFaults FailNextCalls(int count, bool transient = true, TimeSpan? retryAfter = null)
    {
        lock (_gate)
        {
            _failNext = count;
            _failNextTransient = transient;
            _failNextRetryAfter = retryAfter;
        }

        return this;
    }

    /// <summary>
    /// Rejects permanently every change <paramref name="match"/> selects (for example one version of a key, or a document
    /// the store "cannot index") until <see cref="AcceptAllChanges"/>; other changes to the same key go through.
    /// </summary>
    /// <param name="match">Selects the changes to reject; called under the plan's lock, so it must be quick and not block.</param>
    /// <param name="reason">The reason the store gives.</param>
    public StoreFaults RejectChanges(Func<EntityChange, bool> match, string reason = "rejected by fault injection")
    {
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(reason);
        lock (_gate)
        {
            _rejectedChanges.Add((match, reason));
        }

        return this;
    }

    /// <summary>Removes every rule added by <see cref="RejectChanges"/>.</summary>
    public StoreFaults AcceptAllChanges()
    {
        lock (_gate)
        {
            _rejectedChanges.Clear();
        }

        return this;
    }

    /// <summary>Rejects every change to <paramref name="key"/> permanently until <see cref="AcceptKey"/>.</summary>
    public StoreFaults RejectKey(EntityKey key, string reason = "rejected by fault injection")
    {
        lock (_gate)
        {
            _rejectedKeys[key] = reason;
        }

        return this;
    }

    /// <summary>Stops rejecting <paramref name="key"/>.</summary>
    public StoreFaults AcceptKey(EntityKey key)
    {
        lock (_gate)
        {
            _rejectedKeys.Remove(key);
        }

        return this;
    }

    /// <summary>Fails every call transiently until <see cref="ComeBack"/>.</summary>
    /// <param name="retryAfter">The back-off the failures ask for (<see cref="SyncStoreException.RetryAfter"/>), or null for none.</param>
    public StoreFaults GoDown(TimeSpan? retryAfter = null)
    {
        lock (_gate)
        {
            _down = true;
            _downRetryAfter = retryAfter;
        }

        return this;
    }

    /// <summary>Fails every call transiently for <paramref name="duration"/> of the plan's <see cref="TimeProvider"/>.</summary>
    public StoreFaults GoDownFor(TimeSpan duration)
    {
        lock (_gate)
        {
            _downUntil = _time.GetUtcNow() + duration;
        }

        return this;
    }

    /// <summary>Ends <see cref="GoDown"/> and <see cref="GoDownFor"/>.</summary>
    public StoreFaults ComeBack()
    {
        lock (_gate)
        {
            _down = false;
            _downUntil = default;
            _downRetryAfter = null;
        }

        return this;
    }

    /// <summary>Makes calls hang until their cancellation token fires (a timeout) or <see cref="StopHanging"/>.</summary>
    public StoreFaults Hang()
    {
        lock (_gate)
        {
            _hang ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        return this;
    }

    /// <summary>Releases hanging calls and stops hanging.</summary>
    public StoreFaults StopHanging()
    {
        TaskCompletionSource? hang;
        lock (_gate)
        {
            hang = _hang;
            _hang = null;
        }

        hang?.TrySetResult();
        return this;
    }

    internal async ValueTask BeforeCallAsync(string store, IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        var call = Interlocked.Increment(ref _calls);
        Task? hang;
        lock (_gate)
        {
            hang = _hang?.Task;
            if (_failingCalls.Remove(call))
            {
                throw Fail(store, $"call {call} fails by fault injection", transient: true, retryAfter: null);
            }

            if (_failNext > 0)
            {
                _failNext--;
                throw Fail(store, "failing the next calls by fault injection", _failNextTransient, _failNextRetryAfter);
            }

            if (_down || _time.GetUtcNow() < _downUntil)
            {
                throw Fail(store, "store is down (fault injection)", transient: true, _down ? _downRetryAfter : null);
            }

            foreach (var change in changes)
            {
                if (_rejectedKeys.TryGetValue(change.Key, out var reason) || Rejects(change, out reason))
                {
                    InjectedFailures++;
                    throw new SyncStoreException($"Store {SafeText.Quote(store)} rejected {SafeText.Quote(change.Key)}: {reason}", isTransient: false, store, change.Key, "apply");
                }
            }
        }

        if (hang is not null)
        {
            await hang.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (BeforeApply is { } before)
        {
            await before(changes).ConfigureAwait(false);
        }
    }

    private bool Rejects(EntityChange change, out string reason)
    {
        foreach (var (match, why) in _rejectedChanges)
        {
            if (match(change))
            {
                reason = why;
                return true;
            }
        }

        reason = string.Empty;
        return false;
    }

    private SyncStoreException Fail(string store, string message, bool transient, TimeSpan? retryAfter)
    {
        InjectedFailures++;
        return new SyncStoreException($"Store {SafeText.Quote(store)}: {message}.", transient, store, null, "apply") { RetryAfter = retryAfter };
    }
}
