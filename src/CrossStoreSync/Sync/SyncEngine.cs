using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Validation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;

namespace CrossStoreSync.Sync;

/// <summary>
/// The engine behind <see cref="ISyncManager"/>: owns the clock, the write path, one dispatcher per replica and the
/// pending resolver. Started by the hosted service, or lazily by the first call.
/// </summary>
internal sealed partial class SyncEngine : ISyncManager, IChangeFeedWriter, IAsyncDisposable
{
    private readonly Func<StoreTopology> _topologyFactory;
    private readonly CrossStoreSyncOptions _options;
    private readonly TimeProvider _time;
    private readonly SyncMetrics _metrics;
    private readonly EventHub _events;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly EntityValidator _validator;
    private readonly HybridLogicalClock _clock;
    private readonly SemaphoreSlim _startGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];
    private volatile bool _started;
    private StoreTopology? _topology;
    private StoreDispatcher[] _dispatchers = [];
    private PendingResolver? _resolver;
    private ResiliencePipeline? _sourcePipeline;
    private WakeSignal _resolverWake = new();
    private long _head;
    private readonly Dictionary<string, Migration.EntityTransform> _transforms = new(StringComparer.Ordinal);

    public SyncEngine(Func<StoreTopology> topologyFactory, IOptions<CrossStoreSyncOptions> options, TimeProvider time, SyncMetrics metrics, ILoggerFactory loggerFactory, IEnumerable<Migration.TransformRegistration>? transforms = null)
    {
        foreach (var registration in transforms ?? [])
        {
            _transforms[registration.Name] = registration.Transform;
        }

        _topologyFactory = topologyFactory;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("CrossStoreSync");
        _events = new EventHub(_options.EventBufferCapacity);
        _validator = new EntityValidator(_options);
        _clock = new HybridLogicalClock(time, _options.NodeId);
        metrics.SetLagSource(GetLag);
    }

    internal IReadOnlyList<StoreDispatcher> Dispatchers => _dispatchers;

    /// <summary>The event stream subscribers read; the retention task publishes into it too.</summary>
    internal EventHub Events => _events;

    /// <summary>
    /// The last LSN appended: by this process, or by another process sharing the log as far as the dispatchers have
    /// seen (a process that dispatches a shared log without writing would otherwise report no lag).
    /// </summary>
    internal long Head
    {
        get
        {
            var head = Volatile.Read(ref _head);
            foreach (var dispatcher in _dispatchers)
            {
                head = Math.Max(head, dispatcher.ObservedHead);
            }

            return head;
        }
    }

    internal StoreTopology Topology => _topology ?? throw new InvalidOperationException("The sync engine has not started.");

    /// <summary>Initialises the log and stores, resolves pending entries and starts the dispatchers. Idempotent.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_started)
        {
            return;
        }

        await _startGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_started)
            {
                return;
            }

            ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
            var topology = _topologyFactory();
            var collections = _options.Collections.ToArray();
            await topology.Log.InitializeAsync(cancellationToken).ConfigureAwait(false);
            foreach (var store in topology.Stores)
            {
                await store.InitializeAsync(collections, cancellationToken).ConfigureAwait(false);
            }

            _clock.Observe(await topology.Log.GetMaxVersionAsync(cancellationToken).ConfigureAwait(false));
            Volatile.Write(ref _head, await topology.Log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false));
            _headWatch.Advance(Volatile.Read(ref _head));
            _sourcePipeline = ResiliencePipelines.ForSource(topology.Source.Name, _options, _time, _metrics, _logger);
            _resolver = new PendingResolver(topology, _sourcePipeline, _metrics, _logger) { StartupHead = Head };
            _topology = topology;
            foreach (var collection in collections)
            {
                if (collection.OnReplicaRejection == ReplicaRejectionPolicy.Compensate)
                {
                    EnsureCompensationSupported(topology, $"collection {SafeText.Quote(collection.Name)} is configured with ReplicaRejectionPolicy.Compensate");
                }
            }

            // Entries left pending by a crashed writer are resolved before any replica is fed (DESIGN.md §3). An
            // inspecting engine leaves them to the processes that dispatch.
            if (topology.Coupled is null && _options.RunDispatchers)
            {
                await _resolver.ResolveAsync(cancellationToken).ConfigureAwait(false);
            }

            _dispatchers = topology.Replicas
                .Select(r => new StoreDispatcher(r, topology.Log, _options, _time, _metrics, _events, _loggerFactory.CreateLogger("CrossStoreSync.Dispatcher"), OnCompensationRequested))
                .ToArray();
            foreach (var dispatcher in _dispatchers)
            {
                await dispatcher.InitializeAsync(cancellationToken).ConfigureAwait(false);
            }

            await LoadRoutesAsync(topology.Log, cancellationToken).ConfigureAwait(false);
            await LoadRebuildMarksAsync(topology.Log, cancellationToken).ConfigureAwait(false);

            foreach (var dispatcher in _options.RunDispatchers ? _dispatchers : [])
            {
                _loops.Add(Task.Run(() => dispatcher.RunAsync(_stopping.Token), CancellationToken.None));
            }

            if (topology.Coupled is null && _options.RunDispatchers)
            {
                _loops.Add(Task.Run(() => ResolveLoopAsync(_stopping.Token), CancellationToken.None));
            }

            // Requests left by a crash between a rejection and its compensating write are resolved by the loop's first round.
            if (topology.Log is ICompensationLog)
            {
                _loops.Add(Task.Run(() => CompensationLoopAsync(_stopping.Token), CancellationToken.None));
            }

            _started = true;
            SyncLog.EngineStarted(_logger, topology.Source.Name, string.Join(", ", topology.Replicas.Select(r => r.Name)), Head);
        }
        finally
        {
            _startGate.Release();
        }
    }

    /// <summary>Stops the dispatchers and waits for them; in-flight batches are cancelled and replayed on the next start.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The loops end by cancellation; that is the normal way out.
        }

        if (_started)
        {
            SyncLog.EngineStopped(_logger);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
        _startGate.Dispose();
    }

    internal ValueTask EnsureStartedAsync(CancellationToken cancellationToken) =>
        _started ? ValueTask.CompletedTask : new ValueTask(StartAsync(cancellationToken));

    /// <summary>The registered transforms, by name.</summary>
    internal IReadOnlyDictionary<string, Migration.EntityTransform> Transforms => _transforms;

    /// <summary>
    /// Saves a route and installs it in the store's dispatcher, then waits until the dispatcher starts a step with it:
    /// from then on every change it reads is routed, and every change it read before was committed to the source
    /// before this method returned.
    /// </summary>
    internal async Task InstallRouteAsync(string store, CollectionRoute route, CancellationToken cancellationToken)
    {
        var dispatcher = _dispatchers.First(d => d.Name == store);
        await Topology.Log.SetCheckpointAsync(CollectionRoute.CheckpointName(store, route.SourceCollection), Migration.MigrationJson.Write(route.ToState()), cancellationToken).ConfigureAwait(false);
        var version = dispatcher.SetRoute(route.SourceCollection, route);
        await dispatcher.RoutesObserved.WaitForAsync(version, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a route: the store's dispatcher writes the source collection under its own name again.</summary>
    internal async Task RemoveRouteAsync(string store, string sourceCollection, CancellationToken cancellationToken)
    {
        var dispatcher = _dispatchers.First(d => d.Name == store);
        await Topology.Log.SetCheckpointAsync(CollectionRoute.CheckpointName(store, sourceCollection), null, cancellationToken).ConfigureAwait(false);
        var version = dispatcher.SetRoute(sourceCollection, null);
        await dispatcher.RoutesObserved.WaitForAsync(version, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Builds a route from its saved state; throws when its transform or collection is not configured.</summary>
    internal CollectionRoute ResolveRoute(string store, RouteState state)
    {
        if (!_transforms.TryGetValue(state.TransformName, out var transform))
        {
            throw new InvalidOperationException(
                $"Store {SafeText.Quote(store)} routes collection {SafeText.Quote(state.SourceCollection)} to {SafeText.Quote(state.TargetCollection)} through transform {SafeText.Quote(state.TransformName)} (re-embedding {SafeText.Quote(state.MigrationId)}), but no transform of that name is registered. Register it with AddTransform on every start.");
        }

        if (!_options.TryGetCollection(state.TargetCollection, out var target))
        {
            throw new InvalidOperationException(
                $"Store {SafeText.Quote(store)} routes collection {SafeText.Quote(state.SourceCollection)} to {SafeText.Quote(state.TargetCollection)} (re-embedding {SafeText.Quote(state.MigrationId)}), which is not configured. Keep it declared with AddCollection.");
        }

        return new CollectionRoute(state.SourceCollection, state.TargetCollection, target, state.TransformName, transform, state.KeepSource, state.MigrationId);
    }

    private async Task LoadRoutesAsync(Log.IChangeLog log, CancellationToken cancellationToken)
    {
        foreach (var name in await log.ListCheckpointsAsync("route/", cancellationToken).ConfigureAwait(false))
        {
            var json = await log.GetCheckpointAsync(name, cancellationToken).ConfigureAwait(false);
            if (json is null)
            {
                continue;
            }

            var store = name["route/".Length..name.LastIndexOf('/')];
            var dispatcher = _dispatchers.FirstOrDefault(d => d.Name == store);
            if (dispatcher is null)
            {
                continue; // the replica is no longer registered; its route waits in case it comes back
            }

            var route = ResolveRoute(store, Migration.MigrationJson.ReadRoute(json, name));
            dispatcher.SetRoute(route.SourceCollection, route);
        }
    }

    private async Task ResolveLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _resolverWake.WaitAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
                if (await _resolver!.ResolveAsync(cancellationToken).ConfigureAwait(false))
                {
                    WakeDispatchers();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                SyncLog.PendingResolutionDeferred(_logger, ex);
            }
        }
    }

    private void WakeDispatchers()
    {
        foreach (var dispatcher in _dispatchers)
        {
            dispatcher.Wake.Set();
        }
    }

    private void AdvanceHead(long lsn)
    {
        var current = Volatile.Read(ref _head);
        while (lsn > current)
        {
            var seen = Interlocked.CompareExchange(ref _head, lsn, current);
            if (seen == current)
            {
                _headWatch.Advance(lsn);
                return;
            }

            current = seen;
        }
    }

    private IReadOnlyList<StoreLag> GetLag()
    {
        var dispatchers = _dispatchers;
        var head = Head;
        var result = new StoreLag[dispatchers.Length];
        for (var i = 0; i < dispatchers.Length; i++)
        {
            var d = dispatchers[i];
            result[i] = new StoreLag(d.Name, Math.Max(0, head - d.Cursor.Value), d.LagSeconds, d.Faulted, d.NeedsRebuild);
        }

        return result;
    }
}
