using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

/// <summary>
/// Compensation (DESIGN.md §3, <see cref="ReplicaRejectionPolicy.Compensate"/>): a write's prior state is kept in the log
/// with it; a replica's permanent rejection is recorded in the log as a request (by the dispatcher, before its cursor
/// moves past the write); this loop turns each request into a compensating change written through the normal path, or
/// into "superseded" when a newer write already replaced the rejected one. Every step is durable before the next, so a
/// crash anywhere resumes from the log.
/// </summary>
internal sealed partial class SyncEngine
{
    private const int CompensationPage = 256;
    private readonly KeyLocks _keyLocks = new();
    private readonly WakeSignal _compensationWake = new();
    private long _compensationsResolved;

    /// <summary>Advances each time this process resolves a compensation; waits read the log again on it.</summary>
    internal CursorWatch CompensationsResolved { get; } = new();

    /// <summary>
    /// Runs before each requested compensation is decided. A test seam: crash tests block here to kill the process
    /// between the durable rejection and the compensating write.
    /// </summary>
    internal Func<CompensationRecord, CancellationToken, Task>? BeforeCompensate { get; set; }

    public async ValueTask<IReadOnlyList<CompensationRecord>> GetCompensationsAsync(string? collection = null, int maxCount = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        if (collection is not null)
        {
            EntityKey.ValidateCollection(collection, nameof(collection));
        }

        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return Topology.Log is ICompensationLog log
            ? await log.ListCompensationsAsync(new CompensationQuery(maxCount) { Collection = collection, NewestFirst = true }, cancellationToken).ConfigureAwait(false)
            : [];
    }

    /// <summary>Throws unless the topology's log can keep prior states (coupled logs in their own transaction).</summary>
    internal static void EnsureCompensationSupported(StoreTopology topology, string why)
    {
        var supported = topology.Coupled is not null ? topology.Coupled is ISourceCoupledCompensationLog : topology.Log is ICompensationLog;
        if (!supported)
        {
            throw new InvalidOperationException(
                $"Compensation is not available: {why}, but the change log {topology.Log.GetType().Name} cannot keep prior states " +
                $"({(topology.Coupled is not null ? nameof(ISourceCoupledCompensationLog) : nameof(ICompensationLog))} is not implemented). " +
                "Use the SQLite or PostgreSQL change log, or ReplicaRejectionPolicy.DeadLetter.");
        }
    }

    /// <summary>A change with a version from this node's clock above <paramref name="held"/> (a state written after it took its own).</summary>
    private EntityChange RestampAbove(EntityChange change, HlcTimestamp held)
    {
        _clock.Observe(held);
        return Restamp(change);
    }

    /// <summary>
    /// Reads the prior state of each compensable change from a separate source (under the keys' locks, so no write of
    /// this process changes it in between): an upsert with its content, or a delete when it holds nothing live.
    /// </summary>
    private async ValueTask<EntityChange?[]> ReadPriorsAsync(IDocumentStore source, EntityChange[] changes, bool[] compensable, CancellationToken cancellationToken)
    {
        var priors = new EntityChange?[changes.Length];
        for (var i = 0; i < changes.Length; i++)
        {
            if (compensable[i])
            {
                priors[i] = PriorOf(changes[i].Key, await ReadSourceAsync(source, changes[i].Key, cancellationToken).ConfigureAwait(false));
            }
        }

        return priors;
    }

    private static EntityChange PriorOf(EntityKey key, VersionedEntity? held) =>
        held is null ? EntityChange.Delete(key, HlcTimestamp.Zero) : EntityChange.Upsert(held.Entity, held.Version, held.ContentHash);

    private ValueTask<VersionedEntity?> ReadSourceAsync(IDocumentStore source, EntityKey key, CancellationToken cancellationToken) =>
        _sourcePipeline!.ExecuteAsync(static (s, ct) => s.Source.ReadAsync(s.Key, ct), (Source: source, Key: key), cancellationToken);

    /// <summary>Called by a dispatcher once a rejection is durably recorded as a compensation request.</summary>
    internal void OnCompensationRequested(string store, CompensationRecord record, string reason)
    {
        SyncLog.CompensationRequested(_logger, store, SafeText.Quote(record.Key), record.Lsn, SafeText.Quote(reason, 1000));
        _compensationWake.Set();
    }

    private async Task CompensationLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await CompensateRequestedAsync(cancellationToken).ConfigureAwait(false);
                await _compensationWake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The log's database or the source failing, say: every request stays in the log; try again shortly.
                SyncLog.CompensationDeferred(_logger, ex);
                await _compensationWake.WaitAsync(_options.RetryMaxDelay < TimeSpan.FromSeconds(1) ? _options.RetryMaxDelay : TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Resolves every requested compensation in the log, oldest first; returns how many this call resolved.</summary>
    internal async Task<int> CompensateRequestedAsync(CancellationToken cancellationToken)
    {
        var log = (ICompensationLog)Topology.Log;
        var resolved = 0;
        var after = 0L;
        while (true)
        {
            var page = await log.ListCompensationsAsync(new CompensationQuery(CompensationPage) { State = CompensationState.Requested, AfterLsn = after }, cancellationToken).ConfigureAwait(false);
            foreach (var record in page)
            {
                resolved += await CompensateAsync(record, cancellationToken).ConfigureAwait(false) ? 1 : 0;
                after = record.Lsn;
            }

            if (page.Count < CompensationPage)
            {
                return resolved;
            }
        }
    }

    private async Task<bool> CompensateAsync(CompensationRecord record, CancellationToken cancellationToken)
    {
        if (BeforeCompensate is { } hook)
        {
            await hook(record, cancellationToken).ConfigureAwait(false);
        }

        var topology = Topology;
        return topology.Coupled is ISourceCoupledCompensationLog coupled
            ? await CompensateCoupledAsync(coupled, record, cancellationToken).ConfigureAwait(false)
            : await CompensateSeparateAsync(topology, (ICompensationLog)topology.Log, record, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The log decides and writes in one transaction with the source: nothing can slip in between.</summary>
    private async Task<bool> CompensateCoupledAsync(ISourceCoupledCompensationLog log, CompensationRecord record, CancellationToken cancellationToken)
    {
        CompensationOutcome outcome;
        try
        {
            outcome = await log.CompensateAsync(record.Lsn, BuildCompensation, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!TransientErrors.IsTransient(ex, cancellationToken) && !TransientErrors.IsCallerCancellation(ex, cancellationToken))
        {
            await FailCompensationAsync(log, record, ex, cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (outcome.Written is { } written)
        {
            _metrics.Appended.Add(1);
            AdvanceHead(written.Lsn);
            WakeDispatchers();
        }

        if (outcome.ResolvedNow && outcome.Record is { } resolved)
        {
            Report(resolved);
        }

        return outcome.ResolvedNow;
    }

    /// <summary>
    /// A separate source: under the key's lock (no write of this process can change the key meanwhile) check that the
    /// source and the log still end with the rejected write, then log the compensating change as pending with the
    /// decision in one transaction, and apply it like any write.
    /// </summary>
    private async Task<bool> CompensateSeparateAsync(StoreTopology topology, ICompensationLog log, CompensationRecord record, CancellationToken cancellationToken)
    {
        using var locked = await _keyLocks.AcquireAsync(record.Key, cancellationToken).ConfigureAwait(false);
        var held = await ReadSourceAsync(topology.Source, record.Key, cancellationToken).ConfigureAwait(false);
        var last = await log.GetLastEntryForKeyAsync(record.Key, cancellationToken).ConfigureAwait(false);

        // A newer entry in the log (even one still pending after a source outage) or a different state in the source
        // means a newer write replaced the rejected one; it stands.
        HlcTimestamp? newer = last is not null && last.Change.Version > record.Version ? last.Change.Version
            : record.Kind == ChangeKind.Upsert && held?.Version != record.Version ? held?.Version ?? last?.Change.Version ?? HlcTimestamp.Zero
            : record.Kind == ChangeKind.Delete && held is not null ? held.Version
            : null;
        if (newer is { } version)
        {
            var superseded = await log.ResolveCompensationAsync(record.Lsn, CompensationState.Superseded, null, version, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            if (superseded is not null)
            {
                Report(superseded);
            }

            return superseded is not null;
        }

        var compensating = BuildCompensation(record, record.Version);
        var resolved = await log.ResolveCompensationAsync(record.Lsn, CompensationState.Compensated, compensating, compensating.Version, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (resolved?.CompensationLsn is not { } lsn)
        {
            return false;
        }

        var range = new LsnRange(lsn, lsn);
        _metrics.Appended.Add(1);
        AdvanceHead(lsn);
        try
        {
            // Logged and decided: from here the change is applied now, or by the pending resolver after a crash or outage.
            await _sourcePipeline!.ExecuteAsync(static (s, ct) => s.Source.ApplyAsync(s.Changes, ct), (topology.Source, Changes: new[] { compensating }), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (!TransientErrors.IsTransient(ex, CancellationToken.None))
        {
            await log.SetStateAsync(range, LogEntryState.Aborted, CancellationToken.None).ConfigureAwait(false);
            await FailCompensationAsync(log, resolved, ex, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex)
        {
            SyncLog.SourceUnavailable(_logger, topology.Source.Name, 1, lsn, lsn, ex);
            _resolver!.HandedOver[lsn] = range;
            _resolverWake.Set();
            Report(resolved);
            return true;
        }

        await log.SetStateAsync(range, LogEntryState.Committed, CancellationToken.None).ConfigureAwait(false);
        WakeDispatchers();
        Report(resolved);
        return true;
    }

    /// <summary>
    /// The compensating change: the prior content (or a delete when there was none) with a version from this node's
    /// clock, above both the rejected write and the state the source holds, so every store's version guard accepts it
    /// and any later write wins over it.
    /// </summary>
    private EntityChange BuildCompensation(CompensationRecord record, HlcTimestamp held)
    {
        _clock.Observe(record.Version);
        _clock.Observe(held);
        var version = _clock.Now();
        return record.Prior.Entity is { } entity
            ? EntityChange.Upsert(entity, version, record.Prior.ContentHash)
            : EntityChange.Delete(record.Key, version);
    }

    /// <summary>
    /// The source refused the compensating change: the rejected write stays, so it is dead-lettered for the store that
    /// rejected it, exactly as under <see cref="ReplicaRejectionPolicy.DeadLetter"/>.
    /// </summary>
    private async Task FailCompensationAsync(ICompensationLog log, CompensationRecord record, Exception error, CancellationToken cancellationToken)
    {
        var failed = await log.ResolveCompensationAsync(record.Lsn, CompensationState.Failed, null, record.Version, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (failed is null)
        {
            return;
        }

        var held = record.Kind == ChangeKind.Delete ? null : await ReadSourceAsync(Topology.Source, record.Key, cancellationToken).ConfigureAwait(false);
        var change = record.Kind == ChangeKind.Delete ? EntityChange.Delete(record.Key, record.Version)
            : held is not null && held.Version == record.Version ? EntityChange.Upsert(held.Entity, held.Version, held.ContentHash)
            : null;
        var reason = $"{record.Reason} (compensation failed: {error.GetType().Name}: {SafeText.Quote(error.Message, 1000)})";
        if (change is not null && record.Store is { } store)
        {
            await log.AddDeadLetterAsync(store, new LogRecord(record.Lsn, change, LogEntryState.Committed), reason, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            _metrics.DeadLetters.Add(1, new KeyValuePair<string, object?>("store", store));
        }

        SyncLog.CompensationFailed(_logger, SafeText.Quote(record.Key), record.Lsn, record.Store ?? "?", error);
        Report(failed);
    }

    /// <summary>Says what was undone (or why not): a metric, a log line, an event, and a wake-up for waiters.</summary>
    private void Report(CompensationRecord record)
    {
        var store = record.Store ?? Topology.Source.Name;
        var outcome = record.State switch
        {
            CompensationState.Compensated => "compensated",
            CompensationState.Superseded => "superseded",
            _ => "failed",
        };
        _metrics.Compensations.Add(1, new KeyValuePair<string, object?>("store", store), new KeyValuePair<string, object?>("outcome", outcome));
        var key = SafeText.Quote(record.Key);
        var reason = SafeText.Quote(record.Reason, 1000);
        var undone = record.Kind == ChangeKind.Delete ? "delete" : record.Prior.Kind == ChangeKind.Delete ? "create" : "update";
        var restored = record.Prior.Kind == ChangeKind.Delete ? "nothing (deleted)" : "version " + record.Prior.Version.ToString();
        string message;
        switch (record.State)
        {
            case CompensationState.Compensated:
                SyncLog.Compensated(_logger, key, undone, record.Lsn, store, record.CompensationLsn ?? 0, restored, reason);
                message = string.Create(CultureInfo.InvariantCulture, $"The {undone} of {key} at LSN {record.Lsn} ({record.Version}) was undone in every store: the change at LSN {record.CompensationLsn} restores {restored}. Store {SafeText.Quote(store)} rejected it: {reason}");
                break;
            case CompensationState.Superseded:
                SyncLog.CompensationSuperseded(_logger, key, undone, record.Lsn, store, record.ResolvedVersion?.ToString() ?? "?", reason);
                message = string.Create(CultureInfo.InvariantCulture, $"The {undone} of {key} at LSN {record.Lsn} ({record.Version}) was not undone: a newer write ({record.ResolvedVersion}) already replaced it and stands in every store. Store {SafeText.Quote(store)} rejected it: {reason}");
                break;
            default:
                message = string.Create(CultureInfo.InvariantCulture, $"The {undone} of {key} at LSN {record.Lsn} ({record.Version}) could not be undone; it is dead-lettered for store {SafeText.Quote(store)}: {reason}");
                break;
        }

        _events.Publish(new SyncEvent(SyncEventKind.Compensated, store, record.Lsn, record.CompensationLsn ?? record.Lsn, 1, record.Key, message, 0, _time.GetUtcNow()));
        CompensationsResolved.Advance(Interlocked.Increment(ref _compensationsResolved));
    }
}
