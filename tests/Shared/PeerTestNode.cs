using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Tests.Shared;

/// <summary>A running peer-replication node of an in-process test cluster (SQLite or PostgreSQL sourced).</summary>
public sealed class PeerTestNode(IHost host) : IAsyncDisposable
{
    private bool _stopped;

    public IServiceProvider Services => host.Services;

    public ISyncManager Manager => host.Services.GetRequiredService<ISyncManager>();

    public IPeerReplication Peering => host.Services.GetRequiredService<IPeerReplication>();

    public IReplicationWriter Writer => host.Services.GetRequiredService<IReplicationWriter>();

    public PeerStatus StatusOf(int peer) => Peering.GetStatus().Single(s => s.NodeId == peer);

    public async Task<long> HeadAsync() => await (await Writer.GetLogAsync()).GetLastLsnAsync(CancellationToken.None);

    /// <summary>The state this node's source holds for a key (tombstones included), or null.</summary>
    public async Task<StoredState?> StateAsync(string id, string collection = "notes") =>
        (await (await Writer.GetLogAsync()).ReadStatesAsync([new EntityKey(collection, id)], CancellationToken.None)).FirstOrDefault();

    /// <summary>Waits until every replica of this node applied everything its log holds.</summary>
    public async Task<SyncWaitOutcome> WaitForReplicasAsync(TimeSpan timeout) =>
        await Manager.WaitForSyncAsync(new SyncTicket(new LsnRange(1, await HeadAsync()), default), timeout);

    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await host.StopAsync();
            host.Dispose();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
