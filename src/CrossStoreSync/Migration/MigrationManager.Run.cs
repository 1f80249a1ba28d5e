using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Polly;
using Polly.Retry;

namespace CrossStoreSync.Migration;

internal sealed partial class MigrationManager
{
    /// <summary>One run of one migration: a fresh start or a resume.</summary>
    private sealed class Run
    {
        private readonly MigrationManager _owner;
        private readonly MigrationRequest _request;
        private readonly Plan _plan;
        private readonly IProgress<MigrationProgress>? _progress;
        private readonly CancellationToken _cancellationToken;
        private readonly AdaptiveBatchSize _batchSize;
        private readonly ResiliencePipeline _pipeline;
        private readonly KeyValuePair<string, object?> _storeTag;
        private readonly long _started;
        private MigrationHeader _header = null!;
        private MigrationUnit[] _units = [];
        private long _resumedFrom;
        private long _handled;
        private long _retries;

        private readonly EntityParts _parts;

        public Run(MigrationManager owner, MigrationRequest request, Plan plan, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
        {
            _owner = owner;
            _request = request;
            _plan = plan;
            _progress = progress;
            _cancellationToken = cancellationToken;
            _started = owner._time.GetTimestamp();
            _storeTag = new KeyValuePair<string, object?>("store", plan.Target.Name);

            // What the target needs of each entity; a transform may read anything, so it gets everything.
            _parts = plan.Transform is not null ? EntityParts.All : plan.Target.Kind switch
            {
                StoreKind.Vector => EntityParts.Vector,
                StoreKind.Graph => EntityParts.Edges,
                _ => EntityParts.All,
            };
            _batchSize = new AdaptiveBatchSize(request.InitialBatchSize, request.MinBatchSize, request.MaxBatchSize, request.TargetBatchLatency);
            _pipeline = new ResiliencePipelineBuilder { TimeProvider = owner._time }
                .AddRetry(new RetryStrategyOptions
                {
                    ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && TransientErrors.IsTransient(ex, args.Context.CancellationToken)),
                    MaxRetryAttempts = Math.Max(1, request.MaxRetries),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = owner._options.RetryBaseDelay,
                    MaxDelay = owner._options.RetryMaxDelay,
                    OnRetry = args =>
                    {
                        // A struggling target gets smaller batches at once, not after the batch finally succeeds.
                        _batchSize.OnFailure();
                        Interlocked.Increment(ref _retries);
                        owner._metrics.Retries.Add(1, _storeTag);
                        SyncLog.MigrationBatchRetrying(owner._logger, request.Id, 0, plan.Target.Name, args.AttemptNumber + 1, _batchSize.Current, args.Outcome.Exception);
                        return default;
                    },
                })
                .AddTimeout(owner._options.ApplyTimeout)
                .Build();
        }

        private IChangeLog Log => _plan.Log;

        public async Task<MigrationReport> ExecuteAsync()
        {
            // Read before the start releases the dispatcher: a rebuild ends with a repair and a clean check.
            var rebuilding = _plan.Dispatcher.NeedsRebuild;
            var header = await LoadHeaderAsync(Log, _request.Id, _cancellationToken).ConfigureAwait(false);
            if (header is null)
            {
                await StartAsync().ConfigureAwait(false);
            }
            else
            {
                await ResumeAsync(header).ConfigureAwait(false);
            }

            if (_header.Phase == MigrationPhase.Backfilling)
            {
                await BackfillAsync().ConfigureAwait(false);
                await SaveHeaderAsync(MigrationPhase.Verifying).ConfigureAwait(false);
            }

            IReadOnlyList<ConsistencyReport> verification = [];
            if (_request.Verify)
            {
                Report(MigrationPhase.Verifying);
                verification = await VerifyAsync().ConfigureAwait(false);
                if (rebuilding)
                {
                    verification = await RepairUntilCleanAsync(verification).ConfigureAwait(false);
                }
            }

            // A re-embedding switches the replica to the new collection only once it is verified; until then the old
            // collection stays live and running the migration again verifies again.
            var switchable = !_request.Verify || verification.All(r => r.IsConsistent);
            if (_plan.TargetDefinition is not null && switchable)
            {
                await _owner._engine.InstallRouteAsync(_plan.Target.Name, Route(keepSource: false), _cancellationToken).ConfigureAwait(false);
            }

            if (_header.Phase != MigrationPhase.Completed && (switchable || _plan.TargetDefinition is null))
            {
                await SaveHeaderAsync(MigrationPhase.Completed).ConfigureAwait(false);
            }

            if (rebuilding && verification.All(r => r.IsConsistent))
            {
                await _owner._engine.ClearNeedsRebuildAsync(_plan.Target.Name, _request.Id, _cancellationToken).ConfigureAwait(false);
            }

            Report(_header.Phase);
            var written = _units.Sum(u => u.Written);
            var failed = _units.Sum(u => u.Failed);
            var duration = _owner._time.GetElapsedTime(_started);
            var report = new MigrationReport(
                _request.Id,
                _plan.Target.Name,
                _header.StartLsn,
                written,
                failed,
                _resumedFrom,
                await ListFailuresAsync().ConfigureAwait(false),
                _batchSize.Range,
                Interlocked.Read(ref _retries),
                duration,
                verification);
            SyncLog.MigrationCompleted(_owner._logger, _request.Id, _plan.Target.Name, written, failed, report.IsVerified, duration);
            return report;
        }

        private async Task StartAsync()
        {
            Report(MigrationPhase.Starting);
            await ProbeTransformAsync().ConfigureAwait(false);
            if (_plan.TargetDefinition is not null)
            {
                // A re-embedding routes the replica's changes of the collection into the new one too, before the scan
                // starts: every change the scan may miss is then routed by the dispatcher.
                await _owner._engine.InstallRouteAsync(_plan.Target.Name, Route(keepSource: true), _cancellationToken).ConfigureAwait(false);
            }

            // The start position: every log entry up to it is resolved, so each change the scan might miss comes after
            // it and reaches the target through its dispatcher. An entry still pending (its source write in flight) may
            // or may not be visible to the scan, so the position stops just before the oldest one.
            var head = await Log.GetLastLsnAsync(_cancellationToken).ConfigureAwait(false);
            var pending = await Log.ReadPendingAsync(_cancellationToken).ConfigureAwait(false);
            var startLsn = pending.Count == 0 ? head : Math.Min(head, pending.Min(p => p.Lsn) - 1);

            long total = 0;
            var units = new List<MigrationUnit>();
            foreach (var collection in _plan.Collections)
            {
                total += await _plan.Source.CountAsync(collection, _cancellationToken).ConfigureAwait(false);
                for (var w = 0; w < _request.Workers; w++)
                {
                    var first = (uint)(((ulong)w << 32) / (ulong)_request.Workers);
                    var last = (uint)((((ulong)(w + 1) << 32) / (ulong)_request.Workers) - 1);
                    units.Add(new MigrationUnit { Collection = collection, First = first, Last = last });
                }
            }

            _units = [.. units];
            _header = new MigrationHeader
            {
                Id = _request.Id,
                Target = _plan.Target.Name,
                Collections = _plan.Collections,
                TargetCollection = _plan.TargetDefinition?.Name,
                TransformName = _request.TransformName,
                Units = _units.Length,
                StartLsn = startLsn,
                Total = total,
                Phase = MigrationPhase.Backfilling,
                CreatedAt = _owner._time.GetUtcNow(),
            };

            // Units first: a header is only ever saved with all its units in place.
            for (var i = 0; i < _units.Length; i++)
            {
                await SaveUnitAsync(i).ConfigureAwait(false);
            }

            await SkipReplayIfEmptyAsync(startLsn).ConfigureAwait(false);
            await Log.SetCheckpointAsync(MigrationHeader.Name(_request.Id), MigrationJson.Write(_header), _cancellationToken).ConfigureAwait(false);
            SyncLog.MigrationStarted(_owner._logger, _request.Id, _plan.Target.Name, total, startLsn, _request.Workers);
        }

        private async Task ResumeAsync(MigrationHeader header)
        {
            if (header.Phase == MigrationPhase.RolledBack)
            {
                throw new ArgumentException($"Migration {SafeText.Quote(header.Id)} was rolled back; start it again under a new MigrationRequest.Id.", nameof(MigrationRequest.Id));
            }

            if (header.Target != _plan.Target.Name || !header.Collections.SequenceEqual(_plan.Collections, StringComparer.Ordinal)
                || header.TargetCollection != _plan.TargetDefinition?.Name || header.TransformName != _request.TransformName)
            {
                throw new ArgumentException(
                    $"Migration {SafeText.Quote(header.Id)} was started with target {SafeText.Quote(header.Target)}, collections [{string.Join(", ", header.Collections)}], target collection {SafeText.Quote(header.TargetCollection)} and transform {SafeText.Quote(header.TransformName)}; " +
                    $"this request asks for {SafeText.Quote(_plan.Target.Name)}, [{string.Join(", ", _plan.Collections)}], {SafeText.Quote(_plan.TargetDefinition?.Name)} and {SafeText.Quote(_request.TransformName)}. Use a new id for a different migration.",
                    nameof(MigrationRequest.Id));
            }

            _header = header;
            if (_plan.Dispatcher.AwaitingBackfill)
            {
                // The previous run died before the dispatcher saved the skipped cursor.
                _plan.Dispatcher.SkipTo(header.StartLsn);
            }

            _units = await LoadUnitsAsync(Log, header, _cancellationToken).ConfigureAwait(false);
            _resumedFrom = _units.Sum(u => u.Written + u.Failed);
            if (header.Phase == MigrationPhase.Backfilling)
            {
                SyncLog.MigrationResumed(_owner._logger, header.Id, header.Target, _resumedFrom);
            }
        }

        /// <summary>
        /// Transforms one entity before anything is written, so a transform whose output cannot fit the target (a
        /// wrong vector dimension) is reported as bad input rather than as one dead letter per entity.
        /// </summary>
        private async Task ProbeTransformAsync()
        {
            if (_plan.Transform is null)
            {
                return;
            }

            var collection = _plan.Collections[0];
            var first = await _plan.Source.ScanBucketsAsync(collection, BucketRange.All, null, 1, _cancellationToken).ConfigureAwait(false);
            if (first.Count == 0)
            {
                return;
            }

            SyncEntity output;
            try
            {
                output = await _plan.Transform(first[0].Entity, _cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, _cancellationToken))
            {
                return; // one entity the transform rejects is dead-lettered by the backfill, not a bad request
            }

            if (CollectionRoute.Misfit(output, TargetDefinitionOf(collection)) is { } problem)
            {
                throw new ArgumentException($"MigrationRequest.TransformName {SafeText.Quote(_request.TransformName)} produces output that does not fit the target: {problem}. Nothing was written.", nameof(MigrationRequest.TransformName));
            }
        }

        private CollectionDefinition TargetDefinitionOf(string sourceCollection)
        {
            if (_plan.TargetDefinition is { } definition)
            {
                return definition;
            }

            _owner._options.TryGetCollection(sourceCollection, out var own);
            return own;
        }

        /// <summary>
        /// A target that holds nothing of any collection needs none of the log before the start position: the scan
        /// brings everything up to it. Skipping saves replaying the whole history into a new replica. Any record
        /// already there (or a partial collection list) keeps the cursor where it is, since deletes in that stretch
        /// of log must still reach those records.
        /// </summary>
        private async Task SkipReplayIfEmptyAsync(long startLsn)
        {
            if (_plan.TargetDefinition is not null || _plan.Collections.Length != _owner._options.Collections.Count)
            {
                return;
            }

            if (_plan.Dispatcher.AwaitingBackfill)
            {
                // It has never read the log and waits for exactly this.
                _plan.Dispatcher.SkipTo(startLsn);
                return;
            }

            foreach (var collection in _plan.Collections)
            {
                if (await _plan.Target.CountAsync(collection, _cancellationToken).ConfigureAwait(false) != 0)
                {
                    return;
                }
            }

            _plan.Dispatcher.SkipTo(startLsn);
        }

        private async Task BackfillAsync()
        {
            Report(MigrationPhase.Backfilling);
            var open = Enumerable.Range(0, _units.Length).Where(i => !_units[i].Done).ToArray();
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = _request.Workers, CancellationToken = _cancellationToken };
            await Parallel.ForEachAsync(open, parallel, async (index, ct) => await RunUnitAsync(index, ct).ConfigureAwait(false)).ConfigureAwait(false);
        }

        private async Task RunUnitAsync(int index, CancellationToken cancellationToken)
        {
            var unit = _units[index];
            var range = new BucketRange(unit.First, unit.Last);
            var definition = TargetDefinitionOf(unit.Collection);
            var changes = new List<EntityChange>();
            var sources = new List<EntityChange>();
            var rejected = new List<(EntityChange Source, string Reason)>();
            var size = _batchSize.Current;
            var next = ReadPage(unit.Collection, range, unit.After, size, cancellationToken);
            try
            {
                while (true)
                {
                    var page = await next.ConfigureAwait(false);
                    var last = page.Count < size;
                    if (!last)
                    {
                        // Read the next page while this one is written: the source read and the target write overlap.
                        size = _batchSize.Current;
                        next = ReadPage(unit.Collection, range, page[^1].Entity.Key.Id, size, cancellationToken);
                    }

                    if (page.Count > 0)
                    {
                        changes.Clear();
                        sources.Clear();
                        rejected.Clear();
                        await PrepareAsync(page, definition, changes, sources, rejected, cancellationToken).ConfigureAwait(false);
                        var refused = await WriteAsync(changes, sources, rejected, cancellationToken).ConfigureAwait(false);
                        foreach (var (source, reason) in rejected)
                        {
                            await DeadLetterAsync(source, reason, cancellationToken).ConfigureAwait(false);
                        }

                        unit.After = page[^1].Entity.Key.Id;
                        unit.Written += changes.Count - refused;
                        unit.Failed += rejected.Count;
                        Interlocked.Add(ref _handled, page.Count);
                        _owner._metrics.MigrationEntities.Add(page.Count - rejected.Count, _storeTag, new KeyValuePair<string, object?>("outcome", "written"));
                        if (rejected.Count > 0)
                        {
                            _owner._metrics.MigrationEntities.Add(rejected.Count, _storeTag, new KeyValuePair<string, object?>("outcome", "failed"));
                        }
                    }

                    unit.Done = last;
                    await SaveUnitAsync(index).ConfigureAwait(false);
                    Report(MigrationPhase.Backfilling);
                    if (last)
                    {
                        return;
                    }
                }
            }
            finally
            {
                // A read-ahead left behind by a failure or cancellation is observed, so its exception is not lost unobserved.
                _ = next.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }

        // On the thread pool: stores whose reads complete synchronously (SQLite) would otherwise run the read-ahead
        // inline and overlap nothing.
        private Task<IReadOnlyList<VersionedEntity>> ReadPage(string collection, BucketRange range, string? after, int size, CancellationToken cancellationToken) =>
            Task.Run(() => _plan.Source.ScanBucketsAsync(collection, range, after, size, _parts, cancellationToken).AsTask(), cancellationToken);

        private async Task PrepareAsync(IReadOnlyList<VersionedEntity> page, CollectionDefinition definition, List<EntityChange> changes, List<EntityChange> sources, List<(EntityChange, string)> rejected, CancellationToken cancellationToken)
        {
            // A transform goes through the same code as a re-embedding route: transformed, checked against the target
            // collection, re-keyed to it and tagged with the migration id.
            var transformer = _plan.Transform is { } transform
                ? new CollectionRoute(page[0].Entity.Key.Collection, definition.Name, definition, _request.TransformName!, transform, KeepSource: false, _request.Id)
                : null;
            foreach (var current in page)
            {
                var source = EntityChange.Upsert(current.Entity, current.Version, current.ContentHash);
                if (transformer is null)
                {
                    changes.Add(source.WithOrigin(_request.Id));
                    sources.Add(source);
                    continue;
                }

                var (routed, problem) = await transformer.RouteAsync(source, cancellationToken).ConfigureAwait(false);
                if (routed is null)
                {
                    rejected.Add((source, problem!));
                    continue;
                }

                changes.Add(routed);
                sources.Add(source);
            }
        }

        /// <summary>Writes a batch; returns how many of its changes the target refused (added to <paramref name="rejected"/>).</summary>
        private async Task<int> WriteAsync(List<EntityChange> changes, List<EntityChange> sources, List<(EntityChange, string)> rejected, CancellationToken cancellationToken)
        {
            if (changes.Count == 0)
            {
                return 0;
            }

            var started = _owner._time.GetTimestamp();
            try
            {
                await _pipeline.ExecuteAsync(static (state, ct) => state.Target.ApplyAsync(state.Changes, ct), (Target: _plan.Target, Changes: changes), cancellationToken).ConfigureAwait(false);
                var elapsed = _owner._time.GetElapsedTime(started);
                _batchSize.OnSuccess(changes.Count, elapsed);
                _owner._metrics.MigrationBatchSize.Record(changes.Count, _storeTag);
                _owner._metrics.MigrationBatchDuration.Record(elapsed.TotalSeconds, _storeTag);
                return 0;
            }
            catch (Exception ex) when (TransientErrors.IsTransient(ex, cancellationToken))
            {
                throw new MigrationException(
                    $"Migration {SafeText.Quote(_request.Id)}: store {SafeText.Quote(_plan.Target.Name)} kept failing after {_request.MaxRetries} retries: {SafeText.Text(ex.Message)}. The checkpoints stay; run the migration again to resume.",
                    _request.Id,
                    ex);
            }
            catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, cancellationToken))
            {
                // The batch was rejected: apply one by one to find which entity the target refuses.
                _batchSize.OnFailure();
                var single = new EntityChange[1];
                var refused = 0;
                for (var i = 0; i < changes.Count; i++)
                {
                    single[0] = changes[i];
                    try
                    {
                        await _pipeline.ExecuteAsync(static (state, ct) => state.Target.ApplyAsync(state.Single, ct), (Target: _plan.Target, Single: single), cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception one) when (!TransientErrors.IsCallerCancellation(one, cancellationToken) && !TransientErrors.IsTransient(one, cancellationToken))
                    {
                        rejected.Add((sources[i], $"store {SafeText.Quote(_plan.Target.Name)} rejected it: {one.GetType().Name}: {SafeText.Text(one.Message)}"));
                        refused++;
                    }
                }

                return refused;
            }
        }

        private async Task DeadLetterAsync(EntityChange source, string reason, CancellationToken cancellationToken)
        {
            // Under the source key, so replaying it re-projects the source's current state like any other dead letter.
            var text = $"migration {_request.Id}: {reason}";
            await Log.AddDeadLetterAsync(_plan.Target.Name, new LogRecord(0, source, LogEntryState.Committed), text, _owner._time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            _owner._metrics.DeadLetters.Add(1, _storeTag);
            SyncLog.MigrationDeadLettered(_owner._logger, _request.Id, SafeText.Quote(source.Key), _plan.Target.Name, SafeText.Quote(reason, 1000));
        }

        private async Task<IReadOnlyList<ConsistencyReport>> VerifyAsync()
        {
            // Changes made during the backfill reach the target through its dispatcher; wait until it has applied
            // everything written so far, so the check compares settled data.
            var head = await Log.GetLastLsnAsync(_cancellationToken).ConfigureAwait(false);
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken))
            {
                timeout.CancelAfter(_request.VerifyCatchUpTimeout);
                try
                {
                    await _plan.Dispatcher.Cursor.WaitForAsync(head, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!_cancellationToken.IsCancellationRequested)
                {
                    throw new MigrationException(
                        $"Migration {SafeText.Quote(_request.Id)}: store {SafeText.Quote(_plan.Target.Name)} did not apply the log up to {head} within {_request.VerifyCatchUpTimeout} (its cursor is at {_plan.Dispatcher.Cursor.Value}); the backfill is complete, run the migration again to verify.",
                        _request.Id);
                }
            }

            var options = _request.VerifyOptions ?? new ConsistencyCheckOptions { Stores = [_plan.Target.Name] };
            if (_plan.TargetDefinition is not null)
            {
                var started = _owner._time.GetUtcNow();
                var store = await RouteVerifier.CheckAsync(_plan.Source, _plan.Target, Route(keepSource: false), options, _cancellationToken).ConfigureAwait(false);
                var collection = _plan.Collections[0];
                var count = await _plan.Source.CountAsync(collection, _cancellationToken).ConfigureAwait(false);
                return [new ConsistencyReport(collection, _plan.Source.Name, ConsistencyCheckMode.Full, options.Deep, options.Range, count, [store], started, _owner._time.GetUtcNow() - started)];
            }

            var reports = new List<ConsistencyReport>();
            foreach (var collection in _plan.Collections)
            {
                reports.Add(await _owner._checker.CheckAsync(collection, options, null, _cancellationToken).ConfigureAwait(false));
            }

            return reports;
        }

        /// <summary>
        /// A rebuilt store may still hold what the truncated log could no longer tell it: entities deleted while it was
        /// away (the backfill writes only what the source holds). The check finds them; the repair deletes them through
        /// the log; the next check must be clean. Bounded, since a report lists at most MaxReportedFindings per store.
        /// </summary>
        private async Task<IReadOnlyList<ConsistencyReport>> RepairUntilCleanAsync(IReadOnlyList<ConsistencyReport> verification)
        {
            for (var attempt = 0; attempt < 8 && !verification.All(r => r.IsConsistent); attempt++)
            {
                foreach (var report in verification)
                {
                    if (report.IsConsistent)
                    {
                        continue;
                    }

                    var repair = await _owner._checker.RepairAsync(report, false, _cancellationToken).ConfigureAwait(false);
                    if (repair.Ticket is { } ticket
                        && await _owner._engine.WaitForSyncAsync(ticket, _request.VerifyCatchUpTimeout, _cancellationToken).ConfigureAwait(false) == SyncWaitOutcome.TimedOut)
                    {
                        throw new MigrationException(
                            $"Migration {SafeText.Quote(_request.Id)}: the repair of store {SafeText.Quote(_plan.Target.Name)} did not sync within {_request.VerifyCatchUpTimeout}; run the migration again to verify.",
                            _request.Id);
                    }
                }

                verification = await VerifyAsync().ConfigureAwait(false);
            }

            return verification;
        }

        private async Task<IReadOnlyList<MigrationFailure>> ListFailuresAsync()
        {
            if (_units.Sum(u => u.Failed) == 0)
            {
                return [];
            }

            var prefix = $"migration {_request.Id}: ";
            var letters = await Log.ListDeadLettersAsync(_plan.Target.Name, 100_000, _cancellationToken).ConfigureAwait(false);
            return letters
                .Where(l => l.Reason.StartsWith(prefix, StringComparison.Ordinal))
                .Take(MaxListedFailures)
                .Select(l => new MigrationFailure(l.Key, l.Reason[prefix.Length..]))
                .ToArray();
        }

        private CollectionRoute Route(bool keepSource) => _owner._engine.ResolveRoute(_plan.Target.Name, new RouteState
        {
            SourceCollection = _plan.Collections[0],
            TargetCollection = _plan.TargetDefinition!.Name,
            TransformName = _request.TransformName!,
            KeepSource = keepSource,
            MigrationId = _request.Id,
        });

        private async Task SaveUnitAsync(int index) =>
            await Log.SetCheckpointAsync(MigrationUnit.Name(_request.Id, index), MigrationJson.Write(_units[index]), _cancellationToken).ConfigureAwait(false);

        private async Task SaveHeaderAsync(MigrationPhase phase)
        {
            _header.Phase = phase;
            await Log.SetCheckpointAsync(MigrationHeader.Name(_request.Id), MigrationJson.Write(_header), _cancellationToken).ConfigureAwait(false);
        }

        private void Report(MigrationPhase phase)
        {
            var handled = Interlocked.Read(ref _handled);
            var elapsed = _owner._time.GetElapsedTime(_started).TotalSeconds;
            var rate = elapsed > 0 ? handled / elapsed : 0;
            var total = _header?.Total ?? 0;
            var done = _resumedFrom + handled;
            TimeSpan? eta = rate > 0 && phase == MigrationPhase.Backfilling ? TimeSpan.FromSeconds(Math.Max(0, total - done) / rate) : null;
            var errors = _units.Sum(u => u.Failed) + Interlocked.Read(ref _retries);
            _owner.Publish(_progress, new MigrationProgress(_request.Id, phase, done, Math.Max(total, done), rate, eta, _batchSize.Current, errors));
        }
    }
}
