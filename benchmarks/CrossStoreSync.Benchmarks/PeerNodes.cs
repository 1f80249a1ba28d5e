using System.Net;
using System.Net.Sockets;
using CrossStoreSync.Peering;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Benchmarks;

/// <summary>Nodes with embedded SQLite stores that replicate to each other over loopback HTTP, in this process.</summary>
internal sealed class PeerNodes : IAsyncDisposable
{
    private readonly List<IHost> _hosts = [];
    private readonly (string Private, string Public)[] _keys;
    private readonly int[] _ports;

    public PeerNodes(int count, string root)
    {
        Root = root;
        _keys = Enumerable.Range(0, count).Select(_ => PeerKeys.Generate()).ToArray();
        _ports = Enumerable.Range(0, count).Select(_ => FreePort()).ToArray();
    }

    public string Root { get; }

    public string DirectoryOf(int node) => Path.Combine(Root, "node" + node.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Starts node <paramref name="node"/> (1-based) with every other node as a peer.</summary>
    public Node Start(int node, bool pull = true, bool replicas = true)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection(BenchmarkData.Collection, BenchmarkData.Dimension);
                o.AddCollection("topics");
                o.DispatchBatchSize = 1000;
            })
            .UseSqlite(o =>
            {
                o.DirectoryPath = DirectoryOf(node);
                if (!replicas)
                {
                    o.VectorStoreName = null;
                    o.GraphStoreName = null;
                }
            })
            .AddPeering(o =>
            {
                o.NodeId = node;
                o.SigningKey = _keys[node - 1].Private;
                o.ListenUrl = $"http://127.0.0.1:{_ports[node - 1]}";
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.RetryMaxDelay = TimeSpan.FromSeconds(1);
                o.RequestTimeout = TimeSpan.FromMinutes(5);
                for (var other = 1; other <= _keys.Length; other++)
                {
                    if (other != node)
                    {
                        o.Peers.Add(new PeerOptions { NodeId = other, Url = $"http://127.0.0.1:{_ports[other - 1]}", PublicKey = _keys[other - 1].Public, Pull = pull });
                    }
                }
            });
        var host = builder.Build();
        host.StartAsync().GetAwaiter().GetResult();
        _hosts.Add(host);
        return new Node(host);
    }

    public async Task StopAsync(Node node)
    {
        await node.Host.StopAsync();
        node.Host.Dispose();
        _hosts.Remove(node.Host);
        SqliteConnection.ClearAllPools();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.StopAsync();
            host.Dispose();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(Root, recursive: true);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal sealed record Node(IHost Host)
    {
        public ISyncManager Manager => Host.Services.GetRequiredService<ISyncManager>();

        public IPeerReplication Peering => Host.Services.GetRequiredService<IPeerReplication>();

        public IReplicationWriter Writer => Host.Services.GetRequiredService<IReplicationWriter>();

        /// <summary>Waits until this node's replicas applied its whole log.</summary>
        /// <remarks>
        /// The ticket is the head entry alone: dispatchers advance in log order, so passing it means every entry before
        /// it is applied too, and the wait does not read the whole log back (a ticket from LSN 1 would, to count aborted
        /// entries, and would slow each round by the size of the log).
        /// </remarks>
        public async Task WaitForOwnStoresAsync()
        {
            var head = Writer.Head;
            var outcome = head == 0 ? SyncWaitOutcome.Synced : await Manager.WaitForSyncAsync(new SyncTicket(new Log.LsnRange(head, head), default), TimeSpan.FromMinutes(5));
            if (outcome != SyncWaitOutcome.Synced)
            {
                throw new InvalidOperationException($"The node's stores did not catch up: {outcome}.");
            }
        }
    }
}
