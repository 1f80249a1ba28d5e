using CrossStoreSync.Configuration;
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
internal sealed partial class SyncEngine : ISyncManager, IAsyncDisposable
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

    public SyncEngine(Func<StoreTopology> topologyFactory, IOptions<CrossStoreSyncOptions> options, TimeProvider time, SyncMetrics metrics, ILoggerFactory loggerFactory)
    {
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

    internal long Head => Volatile.Read(ref _head);

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
            _sourcePipeline = ResiliencePipelines.ForSource(topology.Source.Name, _options, _time, _metrics, _logger);
            _resolver = new PendingResolver(topology, _sourcePipeline, _metrics, _logger) { StartupHead = Head };
            _topology = topology;

            // Entries left pending by a crashed writer are resolved before any replica is fed (DESIGN.md §3).
            if (topology.Coupled is null)
            {
                await _resolver.ResolveAsync(cancellationToken).ConfigureAwait(false);
            }

            _dispatchers = topology.Replicas
                .Select(r => new StoreDispatcher(r, topology.Log, _options, _time, _metrics, _events, _loggerFactory.CreateLogger("CrossStoreSync.Dispatcher")))
                .ToArray();
            foreach (var dispatcher in _dispatchers)
            {
                await dispatcher.InitializeAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach (var dispatcher in _dispatchers)
            {
                _loops.Add(Task.Run(() => dispatcher.RunAsync(_stopping.Token), CancellationToken.None));
            }

            if (topology.Coupled is null)
            {
                _loops.Add(Task.Run(() => ResolveLoopAsync(_stopping.Token), CancellationToken.None));
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
            result[i] = new StoreLag(d.Name, Math.Max(0, head - d.Cursor.Value), d.LagSeconds, d.Faulted);
        }

        return result;
    }
}
