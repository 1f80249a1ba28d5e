using CrossStoreSync.Log;
using CrossStoreSync.Peering.Client;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Repair;
using CrossStoreSync.Peering.Server;
using CrossStoreSync.Peering.Telemetry;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering;

/// <summary>
/// Runs peer replication: one pull loop per peer, the periodic save of the peers' acknowledgements, optional periodic
/// repairs; and answers <see cref="IPeerReplication"/>. Started by the host after the sync engine.
/// </summary>
internal sealed class PeerReplicationService : IPeerReplication, IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan AckFlushInterval = TimeSpan.FromSeconds(1);
    private readonly PeerDirectory _directory;
    private readonly IReplicationWriter _writer;
    private readonly AckTracker _acks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<int, PeerLink> _links;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];
    private readonly SemaphoreSlim _startGate = new(1, 1);
    private bool _started;

    public PeerReplicationService(PeerDirectory directory, IReplicationWriter writer, AckTracker acks, RepairRequests repairs, PeeringMetrics metrics, IHttpClientFactory httpFactory, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _directory = directory;
        _writer = writer;
        _acks = acks;
        _time = time;
        _logger = loggerFactory.CreateLogger("CrossStoreSync.Peering");
        _links = directory.Peers.ToDictionary(p => p.NodeId, peer =>
        {
            var http = httpFactory.CreateClient(HttpClientName);
            var pull = new PeerClient(peer, directory, http, time, metrics, _logger);
            var control = new PeerClient(peer, directory, httpFactory.CreateClient(HttpClientName), time, metrics, _logger);
            var repairer = new PeerRepairer(peer, directory, control, writer, metrics, time, _logger);
            return new PeerLink(peer, directory, pull, repairer, writer, acks, metrics, time, _logger);
        });
        metrics.SetStatusSource(GetStatus);
        repairs.SetHandler(node =>
        {
            if (_links.TryGetValue(node, out var link) && !_stopping.IsCancellationRequested)
            {
                link.ScheduleRepair(_stopping.Token);
            }
        });
    }

    /// <summary>The named HTTP client the links use (configure it for TLS, proxies or handlers).</summary>
    public const string HttpClientName = "CrossStoreSync.Peering";

    public int NodeId => _directory.NodeId;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _startGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_started)
            {
                return;
            }

            // Fails here, at start-up, when the configured log cannot replicate (ReplicationNotSupportedException).
            await _writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
            await _acks.EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
            foreach (var link in _links.Values)
            {
                await link.LoadAsync(cancellationToken).ConfigureAwait(false);
                if (link.Peer.Pull)
                {
                    _loops.Add(Task.Run(() => link.RunAsync(_stopping.Token), CancellationToken.None));
                }
            }

            _loops.Add(Task.Run(() => FlushAcksAsync(_stopping.Token), CancellationToken.None));
            if (_directory.Options.RepairInterval is { } interval)
            {
                _loops.Add(Task.Run(() => RepairPeriodicallyAsync(interval, _stopping.Token), CancellationToken.None));
            }

            _started = true;
            PeeringLog.Started(_logger, _directory.NodeId, _links.Count, _directory.Options.ListenUrl ?? "the host's endpoints");
        }
        finally
        {
            _startGate.Release();
        }
    }

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
            // The loops end by cancellation.
        }

        if (_started)
        {
            await _acks.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public IReadOnlyList<PeerStatus> GetStatus() => _links.Values.OrderBy(l => l.Peer.NodeId).Select(l => l.GetStatus()).ToArray();

    public async Task SyncNowAsync(int peerNodeId, CancellationToken cancellationToken = default)
    {
        var link = Link(peerNodeId);
        await StartAsync(cancellationToken).ConfigureAwait(false);
        await link.SyncNowAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> WaitForReplicationAsync(SyncTicket ticket, IReadOnlyCollection<int>? peers, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var nodes = peers ?? _links.Keys.ToArray();
        foreach (var node in nodes)
        {
            Link(node);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await Task.WhenAll(nodes.Select(n => _acks.WaitForAsync(n, ticket.Lsns.Last, deadline.Token).AsTask())).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public async Task<PeerRepairReport> RepairAsync(int peerNodeId, CancellationToken cancellationToken = default)
    {
        var link = Link(peerNodeId);
        await StartAsync(cancellationToken).ConfigureAwait(false);
        return await link.Repairer.RepairAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<ConflictRecord>> GetConflictsAsync(string? collection = null, string? id = null, long afterId = 0, int maxCount = 100, CancellationToken cancellationToken = default)
    {
        var log = await _writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
        return await log.ListConflictsAsync(collection, id, afterId, maxCount, cancellationToken).ConfigureAwait(false);
    }

    private PeerLink Link(int node) => _links.TryGetValue(node, out var link)
        ? link
        : throw new ArgumentException($"Node {node} is not a configured peer of node {_directory.NodeId}; configured: {string.Join(", ", _links.Keys.Order())}.", nameof(node));

    private async Task FlushAcksAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(AckFlushInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await _acks.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    PeeringLog.ServeFailed(_logger, -1, "saving acknowledgements failed: " + ex.Message, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task RepairPeriodicallyAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var link in _links.Values)
                {
                    try
                    {
                        await link.Repairer.RepairAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        PeeringLog.PullFailed(_logger, link.Peer.NodeId, ex is PeerProtocolException p ? p.Code : PeerErrorCode.Unknown, 1, interval, "periodic repair failed: " + ex.Message, null);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var link in _links.Values)
        {
            link.Dispose();
            link.Repairer.Dispose();
        }

        _stopping.Dispose();
        _startGate.Dispose();
    }
}
