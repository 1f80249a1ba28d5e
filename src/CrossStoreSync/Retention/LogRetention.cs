using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Migration;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Retention;

/// <summary>
/// The log retention task: every <see cref="LogRetentionOptions.TruncationInterval"/> it works out the low-water mark
/// (the lowest position anyone still needs: every store's durable cursor, every unfinished migration, pending writes,
/// every <see cref="ILogRetentionHolder"/>), removes the entries below it that are older than
/// <see cref="LogRetentionOptions.KeepAppliedFor"/> in short batches, gives the space back, cuts off replicas past the
/// cap, purges old tombstones in every store and removes expired dead letters. One round at a time.
/// </summary>
internal sealed partial class LogRetention : IAsyncDisposable
{
    private readonly SyncEngine _engine;
    private readonly ILogRetentionHolder[] _holders;
    private readonly IServiceProvider _services;
    private readonly CrossStoreSyncOptions _options;
    private readonly LogRetentionOptions _retention;
    private readonly TimeProvider _time;
    private readonly SyncMetrics _metrics;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _roundGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly AppendTimeIndex _appendTimes = new();
    private readonly HashSet<string> _holding = new(StringComparer.Ordinal);
    private readonly HashSet<string> _warnedStores = new(StringComparer.Ordinal);
    private Task? _loop;
    private bool _appendTimesLoaded;
    private bool _warnedLog;
    private long _rounds;

    public LogRetention(SyncEngine engine, IEnumerable<ILogRetentionHolder> holders, IServiceProvider services, IOptions<CrossStoreSyncOptions> options, TimeProvider time, SyncMetrics metrics, ILoggerFactory loggerFactory)
    {
        _engine = engine;
        _holders = [.. holders];
        _services = services;
        _options = options.Value;
        _retention = _options.Retention;
        _time = time;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("CrossStoreSync.Retention");
    }

    /// <summary>Wakes the loop for a round now rather than at the next interval.</summary>
    public WakeSignal Wake { get; } = new();

    /// <summary>Advances to the number of rounds completed; waiting on it is how tests and tools learn a round ran.</summary>
    public CursorWatch Rounds { get; } = new();

    /// <summary>Starts the loop once the engine runs.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        _loop ??= Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Stops the loop and any automatic rebuild; a round cut short is simply run again at the next start.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        var running = new List<Task>(RebuildTasks());
        if (_loop is not null)
        {
            running.Add(_loop);
        }

        try
        {
            await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The loop and the rebuilds end by cancellation.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
        _roundGate.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await RunRoundAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The log's database failing, say: nothing was removed that is still needed (each batch is one
                // transaction); try again next round.
                SyncLog.RetentionFailed(_logger, ex);
            }

            try
            {
                await Wake.WaitAsync(_retention.TruncationInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
        }
    }

    /// <summary>Runs one round now (serialised with the loop's rounds) and returns what it did.</summary>
    internal async Task<RetentionRound> RunRoundAsync(CancellationToken cancellationToken)
    {
        await _roundGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var round = await RoundAsync(cancellationToken).ConfigureAwait(false);
            Rounds.Advance(Interlocked.Increment(ref _rounds));
            return round;
        }
        finally
        {
            _roundGate.Release();
        }
    }

    private async Task<RetentionRound> RoundAsync(CancellationToken cancellationToken)
    {
        await _engine.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        var topology = _engine.Topology;
        if (topology.Log is not IChangeLogRetention log)
        {
            if (!_warnedLog)
            {
                _warnedLog = true;
                SyncLog.RetentionUnsupported(_logger, topology.Log.GetType().Name);
            }

            return RetentionRound.Nothing;
        }

        if (log is IPartitionedChangeLog)
        {
            // Other processes sharing the log may have cut a store off or finished rebuilding one.
            await _engine.SyncRebuildMarksAsync(log, cancellationToken).ConfigureAwait(false);
        }

        // Head first, then the time: every entry up to the head was appended before that instant.
        var head = await log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false);
        var truncatedThrough = await log.GetTruncatedThroughAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        await RecordAppendTimeAsync(log, now, head, cancellationToken).ConfigureAwait(false);
        var ageBound = _appendTimes.AppendedBy(now - _retention.KeepAppliedFor);

        var positions = await GatherPositionsAsync(log, head, truncatedThrough, cancellationToken).ConfigureAwait(false);
        var size = await log.GetRetainedSizeAsync(cancellationToken).ConfigureAwait(false);
        var plan = RetentionPlanner.Plan(head, truncatedThrough, ageBound, positions, _retention.Enabled ? Cap(size) : null);

        foreach (var store in plan.CutOff)
        {
            // Marked (durably) before the log is truncated past it: a crash in between leaves a store marked, never a
            // store that silently skips what was removed.
            await _engine.MarkNeedsRebuildAsync(
                store.Name,
                $"it was {head - store.Position} entries behind (cursor {store.Position}, head {head}), past the retention cap, and had not applied entries older than KeepAppliedFor ({_retention.KeepAppliedFor})",
                store.Position,
                head,
                cancellationToken).ConfigureAwait(false);
        }

        long removed = 0;
        if (_retention.Enabled && plan.TruncateThrough > truncatedThrough)
        {
            (removed, truncatedThrough) = await TruncateAsync(log, truncatedThrough, plan.TruncateThrough, cancellationToken).ConfigureAwait(false);
            size = await log.GetRetainedSizeAsync(cancellationToken).ConfigureAwait(false);
        }

        var holding = ReportHolding(positions, plan, head, ageBound);
        var purged = _retention.Enabled ? await PurgeTombstonesAsync(log, plan.LowWaterMark, now, cancellationToken).ConfigureAwait(false) : 0;
        var deadLetters = await ExpireDeadLettersAsync(log, now, cancellationToken).ConfigureAwait(false);
        if (_retention.Enabled && log is ICompensationLog compensations)
        {
            await PruneCompensationsAsync(compensations, plan.LowWaterMark, now, cancellationToken).ConfigureAwait(false);
        }

        _metrics.Retention = new RetentionSnapshot(head, truncatedThrough, plan.LowWaterMark, size.Entries, size.Bytes, positions, holding, deadLetters.Stored, _retention.UnhealthyRetainedEntries);
        SyncLog.RetentionRound(_logger, head, plan.LowWaterMark, removed, truncatedThrough, size.Entries);

        if (_retention.RebuildAutomatically)
        {
            StartRebuilds();
        }

        return new RetentionRound(head, plan.LowWaterMark, truncatedThrough, removed, purged, deadLetters.Removed, [.. plan.CutOff.Select(c => c.Name)]);
    }

    /// <summary>The cap in entries: the entry cap, or the byte cap divided by the average retained entry.</summary>
    private long? Cap(LogRetainedSize size)
    {
        long? cap = _retention.MaxRetainedEntries;
        if (_retention.MaxRetainedBytes is { } bytes && size.Entries > 0 && size.Bytes > 0)
        {
            var average = Math.Max(1, size.Bytes / size.Entries);
            var byBytes = Math.Max(_options.DispatchBatchSize, bytes / average);
            cap = cap is { } entries ? Math.Min(entries, byBytes) : byBytes;
        }

        return cap;
    }

    private async Task RecordAppendTimeAsync(IChangeLogRetention log, DateTimeOffset now, long head, CancellationToken cancellationToken)
    {
        if (!_appendTimesLoaded)
        {
            _appendTimes.Load(await log.GetCheckpointAsync(AppendTimeIndex.CheckpointName, cancellationToken).ConfigureAwait(false));
            _appendTimesLoaded = true;
        }

        _appendTimes.Record(now, head);
        _appendTimes.Prune(now - _retention.KeepAppliedFor);
        await log.SetCheckpointAsync(AppendTimeIndex.CheckpointName, _appendTimes.Write(), cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<RetentionPosition>> GatherPositionsAsync(IChangeLogRetention log, long head, long truncatedThrough, CancellationToken cancellationToken)
    {
        var positions = new List<RetentionPosition>();

        // Durable cursors, not in-memory ones: after a crash a dispatcher resumes from its durable cursor. A store that
        // needs a rebuild (even once its rebuild has started: its saved cursor may still be the old one for a moment),
        // or a new one waiting for its first backfill, needs nothing before that backfill's start position, which its
        // migration holds.
        foreach (var dispatcher in _engine.Dispatchers)
        {
            if (!dispatcher.AwaitingBackfill && !dispatcher.NeedsRebuild)
            {
                positions.Add(new RetentionPosition(dispatcher.Name, RetentionHolderKind.Store, await log.GetCursorAsync(dispatcher.Name, cancellationToken).ConfigureAwait(false)));
            }
        }

        // Pending writes: the resolver still needs them, and they are above every cursor anyway unless no replica exists.
        var pending = await log.ReadPendingAsync(cancellationToken).ConfigureAwait(false);
        if (pending.Count > 0)
        {
            positions.Add(new RetentionPosition("pending writes", RetentionHolderKind.Pending, pending.Min(p => p.Lsn) - 1));
        }

        // Unfinished migrations hold at their start position: the deletes after it must keep their tombstones while the
        // backfill may still write older copies, and their targets' dispatchers read on from there.
        foreach (var name in await log.ListCheckpointsAsync("migration/", cancellationToken).ConfigureAwait(false))
        {
            if (name.IndexOf('/', "migration/".Length) >= 0 || await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false) is not { } json)
            {
                continue;
            }

            var header = MigrationJson.ReadHeader(json, name);
            if (header.Phase is not (MigrationPhase.Completed or MigrationPhase.RolledBack))
            {
                positions.Add(new RetentionPosition("migration " + header.Id, RetentionHolderKind.Migration, header.StartLsn));
            }
        }

        if (_services.GetService<IMigrationManager>() is MigrationManager migrations && migrations.StartingBound is { } starting)
        {
            positions.Add(new RetentionPosition("migration starting", RetentionHolderKind.Migration, starting));
        }

        foreach (var holder in _holders)
        {
            try
            {
                if (await holder.GetRetainedThroughAsync(cancellationToken).ConfigureAwait(false) is { } position)
                {
                    positions.Add(new RetentionPosition(holder.Name, RetentionHolderKind.Holder, position));
                }
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                SyncLog.RetentionHolderFailed(_logger, holder.Name, ex);
                positions.Add(new RetentionPosition(holder.Name, RetentionHolderKind.Holder, truncatedThrough));
            }
        }

        return positions;
    }

    private async Task<(long Removed, long TruncatedThrough)> TruncateAsync(IChangeLogRetention log, long truncatedThrough, long through, CancellationToken cancellationToken)
    {
        long removed = 0;
        var first = truncatedThrough + 1;
        while (truncatedThrough < through)
        {
            var batch = await log.TruncateAsync(through, _retention.TruncationBatchSize, cancellationToken).ConfigureAwait(false);
            removed += batch.Removed;
            truncatedThrough = batch.TruncatedThrough;
            _metrics.Truncated.Add(batch.Removed);
            SyncLog.TruncationBatch(_logger, batch.Removed, batch.TruncatedThrough);
            if (batch.Removed == 0)
            {
                break;
            }
        }

        if (removed > 0)
        {
            await log.CompactAsync(cancellationToken).ConfigureAwait(false);
            _engine.Events.Publish(new SyncEvent(SyncEventKind.LogTruncated, _engine.Topology.Source.Name, first, truncatedThrough, (int)Math.Min(int.MaxValue, removed), null, null, 0, _time.GetUtcNow()));
        }

        return (removed, truncatedThrough);
    }

    /// <summary>Warns about whoever holds back entries older than KeepAppliedFor; returns their names.</summary>
    private List<string> ReportHolding(List<RetentionPosition> positions, RetentionPlan plan, long head, long ageBound)
    {
        var holding = new List<string>();
        foreach (var position in positions)
        {
            if (position.Position >= ageBound || plan.CutOff.Contains(position))
            {
                continue;
            }

            var held = ageBound - Math.Max(0, position.Position);
            holding.Add(position.Name);
            if (_holding.Add(position.Name))
            {
                SyncLog.RetentionHeld(_logger, position.Name, position.Kind.ToString(), position.Position, held, _retention.KeepAppliedFor);
            }

            _engine.Events.Publish(new SyncEvent(SyncEventKind.RetentionHeld, position.Name, position.Position, head, (int)Math.Min(int.MaxValue, held), null, $"{position.Kind} {SafeText.Quote(position.Name)} holds back {held} entries older than KeepAppliedFor", 0, _time.GetUtcNow()));
        }

        _holding.RemoveWhere(name =>
        {
            if (holding.Contains(name))
            {
                return false;
            }

            SyncLog.RetentionReleased(_logger, name);
            return true;
        });
        return holding;
    }
}

/// <summary>What one retention round did.</summary>
internal sealed record RetentionRound(long Head, long LowWaterMark, long TruncatedThrough, long Removed, long TombstonesPurged, long DeadLettersRemoved, IReadOnlyList<string> CutOff)
{
    public static RetentionRound Nothing { get; } = new(0, 0, 0, 0, 0, 0, []);
}
