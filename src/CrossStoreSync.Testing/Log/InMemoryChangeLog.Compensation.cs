using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Testing.Log;

/// <summary>Compensation records (<see cref="ICompensationLog"/>), held in memory like the rest of this log.</summary>
public sealed partial class InMemoryChangeLog : ICompensationLog
{
    private readonly SortedDictionary<long, CompensationRecord> _compensations = [];
    private readonly Dictionary<(EntityKey Key, HlcTimestamp Version), long> _compensationsByChange = [];

    /// <inheritdoc />
    public ValueTask<LsnRange> AppendAsync(IReadOnlyList<EntityChange> changes, LogEntryState state, IReadOnlyList<EntityChange?> priors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(priors);
        ArgumentOutOfRangeException.ThrowIfZero(changes.Count);
        if (priors.Count != changes.Count)
        {
            throw new ArgumentException($"{changes.Count} changes but {priors.Count} prior states; pass one (or null) per change.", nameof(priors));
        }

        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var range = AppendLocked(changes, state);
            for (var i = 0; i < changes.Count; i++)
            {
                if (priors[i] is { } prior)
                {
                    var change = changes[i];
                    var lsn = range.First + i;
                    _compensations[lsn] = new CompensationRecord(lsn, change.Key, change.Version, change.Kind, prior, CompensationState.Armed, null, null, null, null, null, null);
                    _compensationsByChange[(change.Key, change.Version)] = lsn;
                }
            }

            return ValueTask.FromResult(range);
        }
    }

    /// <inheritdoc />
    public ValueTask<CompensationRecord?> RequestCompensationAsync(EntityKey key, HlcTimestamp version, string store, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(store);
        ArgumentNullException.ThrowIfNull(reason);
        lock (_gate)
        {
            if (!_compensationsByChange.TryGetValue((key, version), out var lsn) || !_compensations.TryGetValue(lsn, out var record))
            {
                return ValueTask.FromResult<CompensationRecord?>(null);
            }

            if (record.State == CompensationState.Armed)
            {
                record = record with { State = CompensationState.Requested, Store = store, Reason = reason, RequestedAt = at };
                _compensations[lsn] = record;
            }

            return ValueTask.FromResult<CompensationRecord?>(record);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<CompensationRecord>> ListCompensationsAsync(CompensationQuery query, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(query.MaxCount, 1);
        lock (_gate)
        {
            IEnumerable<CompensationRecord> records = query.NewestFirst ? _compensations.Values.Reverse() : _compensations.Values;
            var result = records
                .Where(r => r.Lsn > query.AfterLsn
                    && (query.State is { } state ? r.State == state : r.State != CompensationState.Armed)
                    && (query.Lsns is not { } range || (r.Lsn >= range.First && r.Lsn <= range.Last))
                    && (query.Key is not { } key || r.Key == key)
                    && (query.Collection is null || r.Key.Collection == query.Collection))
                .Take(query.MaxCount)
                .ToArray();
            return ValueTask.FromResult<IReadOnlyList<CompensationRecord>>(result);
        }
    }

    /// <inheritdoc />
    public ValueTask<CompensationRecord?> ResolveCompensationAsync(long lsn, CompensationState state, EntityChange? compensating, HlcTimestamp resolvedVersion, DateTimeOffset at, CancellationToken cancellationToken)
    {
        if (state is not (CompensationState.Compensated or CompensationState.Superseded or CompensationState.Failed) || (state == CompensationState.Compensated) != (compensating is not null))
        {
            throw new ArgumentException($"A compensation resolves as Compensated with a compensating change, or as Superseded or Failed without one; got {state} {(compensating is null ? "without" : "with")} one.", nameof(state));
        }

        lock (_gate)
        {
            if (!_compensations.TryGetValue(lsn, out var record)
                || !(record.State == CompensationState.Requested || (state == CompensationState.Failed && record.State == CompensationState.Compensated)))
            {
                return ValueTask.FromResult<CompensationRecord?>(null);
            }

            long? written = record.CompensationLsn;
            if (compensating is not null)
            {
                written = AppendLocked([compensating], LogEntryState.Pending).First;
            }

            record = record with { State = state, CompensationLsn = written, ResolvedVersion = resolvedVersion, ResolvedAt = at };
            _compensations[lsn] = record;
            return ValueTask.FromResult<CompensationRecord?>(record);
        }
    }

    /// <inheritdoc />
    public ValueTask<int> RemoveCompensationsAsync(long armedThrough, DateTimeOffset resolvedBefore, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        lock (_gate)
        {
            var expired = _compensations.Values
                .Where(r => r.State == CompensationState.Armed ? r.Lsn <= armedThrough : r.State != CompensationState.Requested && r.ResolvedAt < resolvedBefore)
                .Take(maxCount)
                .ToArray();
            foreach (var record in expired)
            {
                _compensations.Remove(record.Lsn);
                _compensationsByChange.Remove((record.Key, record.Version));
            }

            return ValueTask.FromResult(expired.Length);
        }
    }
}
