using System.Diagnostics;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

internal sealed partial class SyncEngine
{
    public ValueTask<SyncTicket> WriteAsync(SyncEntity entity, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(entity, null, cancellationToken);

    public ValueTask<SyncTicket> WriteAsync(SyncEntity entity, WriteOptions options, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(entity, CheckOptions(options), cancellationToken);

    public ValueTask<SyncTicket> WriteBatchAsync(IReadOnlyList<SyncEntity> entities, CancellationToken cancellationToken = default) =>
        WriteBatchCoreAsync(entities, null, cancellationToken);

    public ValueTask<SyncTicket> WriteBatchAsync(IReadOnlyList<SyncEntity> entities, WriteOptions options, CancellationToken cancellationToken = default) =>
        WriteBatchCoreAsync(entities, CheckOptions(options), cancellationToken);

    public ValueTask<SyncTicket> DeleteAsync(EntityKey key, CancellationToken cancellationToken = default) =>
        DeleteCoreAsync(key, null, cancellationToken);

    public ValueTask<SyncTicket> DeleteAsync(EntityKey key, WriteOptions options, CancellationToken cancellationToken = default) =>
        DeleteCoreAsync(key, CheckOptions(options), cancellationToken);

    private async ValueTask<SyncTicket> WriteCoreAsync(SyncEntity entity, ReplicaRejectionPolicy? policy, CancellationToken cancellationToken)
    {
        _validator.Validate(entity, nameof(entity));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        EntityChange[] changes = [EntityChange.Upsert(entity, _clock.Now())];
        return await CommitAsync(changes, null, restampable: true, Compensable(changes, policy), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<SyncTicket> WriteBatchCoreAsync(IReadOnlyList<SyncEntity> entities, ReplicaRejectionPolicy? policy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entities);
        CheckBatchSize(entities.Count, "batch", "entities", "The batch is empty; pass at least one entity.", nameof(entities));

        var keys = new HashSet<EntityKey>(entities.Count);
        for (var i = 0; i < entities.Count; i++)
        {
            _validator.Validate(entities[i], $"{nameof(entities)}[{i}]");
            if (!keys.Add(entities[i].Key))
            {
                throw new ArgumentException($"Key {SafeText.Quote(entities[i].Key)} appears more than once in the batch (again at index {i}); keys in a batch must be distinct.", $"{nameof(entities)}[{i}]");
            }
        }

        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var changes = new EntityChange[entities.Count];
        for (var i = 0; i < changes.Length; i++)
        {
            changes[i] = EntityChange.Upsert(entities[i], _clock.Now());
        }

        return await CommitAsync(changes, null, restampable: true, Compensable(changes, policy), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<SyncTicket> DeleteCoreAsync(EntityKey key, ReplicaRejectionPolicy? policy, CancellationToken cancellationToken)
    {
        _validator.ValidateKey(key, nameof(key));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        EntityChange[] changes = [EntityChange.Delete(key, _clock.Now())];
        return await CommitAsync(changes, null, restampable: true, Compensable(changes, policy), cancellationToken).ConfigureAwait(false);
    }

    private static ReplicaRejectionPolicy? CheckOptions(WriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.OnReplicaRejection is { } policy && !Enum.IsDefined(policy))
        {
            throw new ArgumentException($"WriteOptions.OnReplicaRejection is {(int)policy}; it must be DeadLetter or Compensate (or null for the collection's policy).", nameof(options));
        }

        return options.OnReplicaRejection;
    }

    /// <summary>
    /// Which changes a replica's rejection compensates: the write's override, else each collection's policy. Null when
    /// none, so writes under the default policy take exactly the path they always took.
    /// </summary>
    /// <exception cref="InvalidOperationException">Compensation is asked for but the change log cannot keep prior states.</exception>
    private bool[]? Compensable(EntityChange[] changes, ReplicaRejectionPolicy? policy)
    {
        bool[]? flags = null;
        for (var i = 0; i < changes.Length; i++)
        {
            _options.TryGetCollection(changes[i].Key.Collection, out var collection);
            if ((policy ?? collection.OnReplicaRejection) == ReplicaRejectionPolicy.Compensate)
            {
                flags ??= new bool[changes.Length];
                flags[i] = true;
            }
        }

        if (flags is not null)
        {
            EnsureCompensationSupported(Topology, "the write asks for ReplicaRejectionPolicy.Compensate");
        }

        return flags;
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
        var newest = NewestVersion(changes);
        _clock.Observe(newest);
        var ticket = await CommitAsync(changes, null, restampable: false, cancellationToken).ConfigureAwait(false);
        return ticket with { Version = newest };
    }

    async ValueTask<SyncTicket> IChangeFeedWriter.WriteAsync(IReadOnlyList<FeedChange> changes, FeedPosition position, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ValidateFeedPosition(position);
        CheckBatchSize(changes.Count, "feed batch", "changes", "The feed batch is empty; pass at least one change (or save the position alone).", nameof(changes));

        var keys = new HashSet<EntityKey>(changes.Count);
        for (var i = 0; i < changes.Count; i++)
        {
            var change = changes[i] ?? throw new ArgumentNullException($"{nameof(changes)}[{i}]");
            if (change.Entity is { } entity)
            {
                _validator.Validate(entity, $"{nameof(changes)}[{i}]");
            }
            else
            {
                _validator.ValidateKey(change.Key, $"{nameof(changes)}[{i}]");
            }

            if (!keys.Add(change.Key))
            {
                throw new ArgumentException($"Key {SafeText.Quote(change.Key)} appears more than once in the feed batch (again at index {i}); coalesce the batch first.", $"{nameof(changes)}[{i}]");
            }
        }

        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var entries = new EntityChange[changes.Count];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = changes[i].Entity is { } entity ? EntityChange.Upsert(entity, _clock.Now()) : EntityChange.Delete(changes[i].Key, _clock.Now());
        }

        var checkpoint = new LogCheckpoint(FeedCheckpointName(position.Feed), position.Value);
        if (Topology.Coupled is not null)
        {
            return await CommitAsync(entries, checkpoint, cancellationToken).ConfigureAwait(false);
        }

        // A separate log cannot take the position in the same transaction: save it right after the write. A crash in
        // between writes the batch again on restart, with the same content.
        var ticket = await CommitAsync(entries, null, cancellationToken).ConfigureAwait(false);
        await Topology.Log.SetCheckpointAsync(checkpoint.Name, checkpoint.Value, CancellationToken.None).ConfigureAwait(false);
        return ticket;
    }

    async ValueTask IChangeFeedWriter.SavePositionAsync(FeedPosition position, CancellationToken cancellationToken)
    {
        ValidateFeedPosition(position);
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        await Topology.Log.SetCheckpointAsync(FeedCheckpointName(position.Feed), position.Value, cancellationToken).ConfigureAwait(false);
    }

    async ValueTask<string?> IChangeFeedWriter.GetPositionAsync(string feed, CancellationToken cancellationToken)
    {
        ValidateFeedPosition(new FeedPosition(feed, string.Empty));
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return await Topology.Log.GetCheckpointAsync(FeedCheckpointName(feed), cancellationToken).ConfigureAwait(false);
    }

    private void CheckBatchSize(int count, string batch, string items, string whenEmpty, string paramName)
    {
        if (count == 0)
        {
            throw new ArgumentException(whenEmpty, paramName);
        }

        if (count > _options.MaxWriteBatchSize)
        {
            throw new ArgumentException($"The {batch} has {count} {items}; the limit (CrossStoreSyncOptions.MaxWriteBatchSize) is {_options.MaxWriteBatchSize}.", paramName);
        }
    }

    private static string FeedCheckpointName(string feed) => "feed/" + feed;

    private static void ValidateFeedPosition(FeedPosition position)
    {
        var feed = position.Feed;
        if (string.IsNullOrEmpty(feed) || feed.Length > 200)
        {
            throw new ArgumentException($"The feed name {SafeText.Quote(feed)} must have 1 to 200 characters.", "position.Feed");
        }

        foreach (var c in feed)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.' or '/'))
            {
                throw new ArgumentException($"The feed name {SafeText.Quote(feed)} has the character {SafeText.Quote(c.ToString())}; use letters, digits, '_', '-', '.' and '/'.", "position.Feed");
            }
        }

        ArgumentNullException.ThrowIfNull(position.Value, "position.Value");
    }

    private ValueTask<SyncTicket> CommitAsync(EntityChange[] changes, LogCheckpoint? checkpoint, CancellationToken cancellationToken) =>
        CommitAsync(changes, checkpoint, restampable: true, compensable: null, cancellationToken);

    private ValueTask<SyncTicket> CommitAsync(EntityChange[] changes, LogCheckpoint? checkpoint, bool restampable, CancellationToken cancellationToken) =>
        CommitAsync(changes, checkpoint, restampable, compensable: null, cancellationToken);

    /// <param name="changes">The changes; with a replication log, elements may be replaced by restamped ones.</param>
    /// <param name="checkpoint">A checkpoint committed with them (coupled logs), or null.</param>
    /// <param name="restampable">True for writes whose version the clock issued just now (application and feed writes):
    /// a state received from another node in between may be newer, and the write then takes a new version on top of it.
    /// False for writes that carry a chosen version (repairs), which must lose to anything newer.</param>
    /// <param name="compensable">Per change, whether a replica's rejection of it is compensated; null for none.</param>
    /// <param name="cancellationToken">Cancels the write before it is durable.</param>
    private async ValueTask<SyncTicket> CommitAsync(EntityChange[] changes, LogCheckpoint? checkpoint, bool restampable, bool[]? compensable, CancellationToken cancellationToken)
    {
        var topology = Topology;
        using var activity = SyncTelemetry.ActivitySource.StartActivity("crossstoresync.write");
        activity?.SetTag("crossstoresync.changes", changes.Length);
        var started = _time.GetTimestamp();
        var range = topology.Coupled is { } coupled
            ? await AppendCoupledAsync(coupled, changes, checkpoint, restampable, compensable, cancellationToken).ConfigureAwait(false)
            : await AppendThenApplyAsync(topology, changes, restampable, compensable, cancellationToken).ConfigureAwait(false);

        AdvanceHead(range.Last);
        WakeDispatchers();
        _metrics.WriteDuration.Record(_time.GetElapsedTime(started).TotalSeconds);
        return new SyncTicket(range, NewestVersion(changes));
    }

    private static HlcTimestamp NewestVersion(EntityChange[] changes)
    {
        var newest = HlcTimestamp.Zero;
        foreach (var change in changes)
        {
            newest = change.Version > newest ? change.Version : newest;
        }

        return newest;
    }

    private async ValueTask<LsnRange> AppendCoupledAsync(ISourceCoupledChangeLog coupled, EntityChange[] changes, LogCheckpoint? checkpoint, bool restampable, bool[]? compensable, CancellationToken cancellationToken)
    {
        try
        {
            var range = compensable is not null
                ? await ((ISourceCoupledCompensationLog)coupled).AppendAndApplyAsync(changes, compensable, checkpoint, RestampAbove, cancellationToken).ConfigureAwait(false)
                : restampable && coupled is IReplicationLog replication
                ? await replication.AppendAndApplyAsync(changes, checkpoint, Restamp, cancellationToken).ConfigureAwait(false)
                : await coupled.AppendAndApplyAsync(changes, checkpoint, cancellationToken).ConfigureAwait(false);
            _metrics.Appended.Add(changes.Length);
            return range;
        }
        catch (Exception ex) when (!TransientErrors.IsTransient(ex, cancellationToken) && !TransientErrors.IsCallerCancellation(ex, cancellationToken))
        {
            // The source's transaction rolled back with the log append: nothing is stored anywhere.
            throw Rejected(coupled.CoupledSource!.Name, changes, ex);
        }
    }

    private async ValueTask<LsnRange> AppendThenApplyAsync(StoreTopology topology, EntityChange[] changes, bool restampable, bool[]? compensable, CancellationToken cancellationToken)
    {
        if (topology.Log is not ICompensationLog compensations)
        {
            return await AppendThenApplyAsync(topology, changes, null, null, cancellationToken).ConfigureAwait(false);
        }

        // With a separate source the compensation's check ("does the source still hold the rejected write?") and its
        // write cannot share a transaction with the source: writes of this process to the same keys are kept out of
        // that window by the keys' locks, and take their versions inside them, so a write that waited for a compensation
        // gets a version above the compensating change's.
        using var locks = await _keyLocks.AcquireAsync(changes, cancellationToken).ConfigureAwait(false);
        if (restampable)
        {
            for (var i = 0; i < changes.Length; i++)
            {
                changes[i] = Restamp(changes[i]);
            }
        }

        var priors = compensable is null ? null : await ReadPriorsAsync(topology.Source, changes, compensable, cancellationToken).ConfigureAwait(false);
        return await AppendThenApplyAsync(topology, changes, compensations, priors, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<LsnRange> AppendThenApplyAsync(StoreTopology topology, EntityChange[] changes, ICompensationLog? compensations, EntityChange?[]? priors, CancellationToken cancellationToken)
    {
        // Pending first: from here on the change is durable, and no replica reads past it until the source decides.
        var range = priors is not null
            ? await compensations!.AppendAsync(changes, LogEntryState.Pending, priors, cancellationToken).ConfigureAwait(false)
            : await topology.Log.AppendAsync(changes, LogEntryState.Pending, cancellationToken).ConfigureAwait(false);
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
                $"Source {SafeText.Quote(topology.Source.Name)} is unavailable; {range.Count} change(s) at LSN {range.First}..{range.Last} are logged as pending and will be applied when it recovers.",
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
        SyncLog.WriteRejected(_logger, store, changes.Length, SafeText.Quote(changes[0].Key), ex);
        Activity.Current?.SetStatus(ActivityStatusCode.Error, ex.Message);
        _events.Publish(new SyncEvent(SyncEventKind.Aborted, store, 0, 0, changes.Length, changes[0].Key, ex.Message, 0, _time.GetUtcNow()));
        var what = changes.Length == 1 ? SafeText.Quote(changes[0].Key) : $"a batch of {changes.Length} starting with {SafeText.Quote(changes[0].Key)}";
        return new SyncWriteRejectedException($"Source {SafeText.Quote(store)} rejected the write of {what}: {SafeText.Text(ex.Message)}", store, changes[0].Key, ex);
    }
}
