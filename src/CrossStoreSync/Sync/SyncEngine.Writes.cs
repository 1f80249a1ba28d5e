using System.Diagnostics;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

internal sealed partial class SyncEngine
{
    public async ValueTask<SyncTicket> WriteAsync(SyncEntity entity, CancellationToken cancellationToken = default)
    {
        _validator.Validate(entity, nameof(entity));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return await CommitAsync([EntityChange.Upsert(entity, _clock.Now())], cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<SyncTicket> WriteBatchAsync(IReadOnlyList<SyncEntity> entities, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entities);
        if (entities.Count == 0)
        {
            throw new ArgumentException("The batch is empty; pass at least one entity.", nameof(entities));
        }

        if (entities.Count > _options.MaxWriteBatchSize)
        {
            throw new ArgumentException($"The batch has {entities.Count} entities; the limit (CrossStoreSyncOptions.MaxWriteBatchSize) is {_options.MaxWriteBatchSize}.", nameof(entities));
        }

        var keys = new HashSet<EntityKey>(entities.Count);
        for (var i = 0; i < entities.Count; i++)
        {
            _validator.Validate(entities[i], $"{nameof(entities)}[{i}]");
            if (!keys.Add(entities[i].Key))
            {
                throw new ArgumentException($"Key '{entities[i].Key}' appears more than once in the batch (again at index {i}); keys in a batch must be distinct.", $"{nameof(entities)}[{i}]");
            }
        }

        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var changes = new EntityChange[entities.Count];
        for (var i = 0; i < changes.Length; i++)
        {
            changes[i] = EntityChange.Upsert(entities[i], _clock.Now());
        }

        return await CommitAsync(changes, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<SyncTicket> DeleteAsync(EntityKey key, CancellationToken cancellationToken = default)
    {
        _validator.ValidateKey(key, nameof(key));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return await CommitAsync([EntityChange.Delete(key, _clock.Now())], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes repair changes that carry their own versions (the consistency checker's re-projections and orphan
    /// deletes) through the normal write path: source first, then every replica through the log. The clock observes
    /// them so later writes stay newer.
    /// </summary>
    internal async ValueTask<SyncTicket> WriteRepairsAsync(EntityChange[] changes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(changes.Length);
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var newest = HlcTimestamp.Zero;
        foreach (var change in changes)
        {
            newest = change.Version > newest ? change.Version : newest;
        }

        _clock.Observe(newest);
        var ticket = await CommitAsync(changes, cancellationToken).ConfigureAwait(false);
        return ticket with { Version = newest };
    }

    private async ValueTask<SyncTicket> CommitAsync(EntityChange[] changes, CancellationToken cancellationToken)
    {
        var topology = Topology;
        using var activity = SyncTelemetry.ActivitySource.StartActivity("crossstoresync.write");
        activity?.SetTag("crossstoresync.changes", changes.Length);
        var started = _time.GetTimestamp();
        var range = topology.Coupled is { } coupled
            ? await AppendCoupledAsync(coupled, changes, cancellationToken).ConfigureAwait(false)
            : await AppendThenApplyAsync(topology, changes, cancellationToken).ConfigureAwait(false);

        AdvanceHead(range.Last);
        WakeDispatchers();
        _metrics.WriteDuration.Record(_time.GetElapsedTime(started).TotalSeconds);
        return new SyncTicket(range, changes[^1].Version);
    }

    private async ValueTask<LsnRange> AppendCoupledAsync(ISourceCoupledChangeLog coupled, EntityChange[] changes, CancellationToken cancellationToken)
    {
        try
        {
            var range = await coupled.AppendAndApplyAsync(changes, cancellationToken).ConfigureAwait(false);
            _metrics.Appended.Add(changes.Length);
            return range;
        }
        catch (Exception ex) when (!TransientErrors.IsTransient(ex, cancellationToken) && !TransientErrors.IsCallerCancellation(ex, cancellationToken))
        {
            // The source's transaction rolled back with the log append: nothing is stored anywhere.
            throw Rejected(coupled.CoupledSource.Name, changes, ex);
        }
    }

    private async ValueTask<LsnRange> AppendThenApplyAsync(StoreTopology topology, EntityChange[] changes, CancellationToken cancellationToken)
    {
        // Pending first: from here on the change is durable, and no replica reads past it until the source decides.
        var range = await topology.Log.AppendAsync(changes, LogEntryState.Pending, cancellationToken).ConfigureAwait(false);
        _metrics.Appended.Add(changes.Length);

        // The head is the last appended LSN (as at start-up), so lag also counts entries that stay pending after a
        // source outage and are committed later by the resolver.
        AdvanceHead(range.Last);
        try
        {
            // Past the point of no return the caller's token no longer applies: the source write either happens
            // now (bounded by ApplyTimeout) or is finished by the resolver.
            await _sourcePipeline!.ExecuteAsync(static (s, ct) => s.Source.ApplyAsync(s.Changes, ct), (topology.Source, Changes: changes), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (!TransientErrors.IsTransient(ex, CancellationToken.None))
        {
            await topology.Log.SetStateAsync(range, LogEntryState.Aborted, CancellationToken.None).ConfigureAwait(false);
            throw Rejected(topology.Source.Name, changes, ex);
        }
        catch (Exception ex)
        {
            SyncLog.SourceUnavailable(_logger, topology.Source.Name, range.Count, range.First, range.Last, ex);
            _resolver!.HandedOver[range.First] = range;
            _resolverWake.Set();
            throw new SourceUnavailableException(
                $"Source '{topology.Source.Name}' is unavailable; {range.Count} change(s) at LSN {range.First}..{range.Last} are logged as pending and will be applied when it recovers.",
                topology.Source.Name,
                new SyncTicket(range, changes[^1].Version),
                ex);
        }

        await topology.Log.SetStateAsync(range, LogEntryState.Committed, CancellationToken.None).ConfigureAwait(false);
        return range;
    }

    private SyncWriteRejectedException Rejected(string store, EntityChange[] changes, Exception ex)
    {
        _metrics.WritesRejected.Add(changes.Length);
        SyncLog.WriteRejected(_logger, store, changes.Length, changes[0].Key.ToString(), ex);
        Activity.Current?.SetStatus(ActivityStatusCode.Error, ex.Message);
        _events.Publish(new SyncEvent(SyncEventKind.Aborted, store, 0, 0, changes.Length, changes[0].Key, ex.Message, 0, _time.GetUtcNow()));
        var what = changes.Length == 1 ? $"'{changes[0].Key}'" : $"a batch of {changes.Length} starting with '{changes[0].Key}'";
        return new SyncWriteRejectedException($"Source '{store}' rejected the write of {what}: {ex.Message}", store, changes[0].Key, ex);
    }
}
