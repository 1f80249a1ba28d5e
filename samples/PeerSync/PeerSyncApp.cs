using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Peering;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PeerSync;

/// <summary>The sample: three nodes, a partition, a conflict, convergence.</summary>
public static class PeerSyncApp
{
    private const int Nodes = 3;
    private const string Collection = "notes";

    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        var data = args.Length >= 2 && args[0] == "--data" ? args[1] : Path.Combine(Path.GetTempPath(), "css-peersync-" + Guid.NewGuid().ToString("N"));
        var keys = Enumerable.Range(0, Nodes).Select(_ => PeerKeys.Generate()).ToArray();
        var ports = Enumerable.Range(0, Nodes).Select(_ => FreePort()).ToArray();

        // relays[i, j]: node i reaches node j through it, so the network between two nodes can be cut.
        var relays = new Relay[Nodes, Nodes];
        for (var i = 0; i < Nodes; i++)
        {
            for (var j = 0; j < Nodes; j++)
            {
                relays[i, j] = i == j ? null! : new Relay(ports[j]);
            }
        }

        var hosts = new IHost[Nodes];
        try
        {
            for (var i = 0; i < Nodes; i++)
            {
                hosts[i] = await StartNodeAsync(i, data, keys, ports, relays);
            }

            output.WriteLine($"Started {Nodes} nodes (SQLite stores under {data}), each pulling from the other two over signed HTTP.");

            // 1. Writes on every node reach the others.
            for (var i = 0; i < Nodes; i++)
            {
                var batch = Enumerable.Range(0, 50).Select(k => Note($"n{i + 1}-{k}", $"note {k} written on node {i + 1}")).ToArray();
                await Manager(hosts[i]).WriteBatchAsync(batch);
            }

            await SyncAllAsync(hosts);
            output.WriteLine("Each node wrote 50 notes; after syncing every node holds all 150.");

            // 2. Node 3 is cut off; the same note is edited on both sides of the partition.
            Partition(relays, 2, cut: true);
            output.WriteLine("Node 3 is partitioned from nodes 1 and 2.");
            await Manager(hosts[0]).WriteAsync(Note("shared", "the title as node 1 wrote it"));
            await Manager(hosts[2]).WriteAsync(Note("shared", "the title as node 3 wrote it, offline"));
            await Manager(hosts[1]).WriteBatchAsync(Enumerable.Range(0, 20).Select(k => Note($"during-{k}", "written on node 2 during the partition")).ToArray());
            await Manager(hosts[2]).WriteBatchAsync(Enumerable.Range(0, 20).Select(k => Note($"offline-{k}", "written on node 3 while cut off")).ToArray());
            output.WriteLine("During the partition: 'shared' edited on node 1 and on node 3; 20 more notes on each side.");

            // 3. Heal and converge.
            Partition(relays, 2, cut: false);
            await SyncAllAsync(hosts);
            await SyncAllAsync(hosts); // a node that resolved a conflict passes its result on in the second round
            output.WriteLine("Healed; every node pulled from every other.");

            // 4. The conflict, as recorded, and how it was resolved.
            foreach (var (host, index) in hosts.Select((h, i) => (h, i)))
            {
                foreach (var conflict in await Peering(host).GetConflictsAsync(Collection, "shared"))
                {
                    var lost = conflict.Loser.Entity is { } e ? Encoding.UTF8.GetString(e.Document.Span) : "(deleted)";
                    output.WriteLine($"Node {index + 1} recorded conflict #{conflict.Id} on '{conflict.Key}' with node {conflict.PeerNodeId}: {conflict.Resolution}; kept version {conflict.Winner}, lost {conflict.Loser.Version} {lost}.");
                }
            }

            var kept = await Source(hosts[0]).ReadAsync(new EntityKey(Collection, "shared"), CancellationToken.None);
            output.WriteLine($"Every node keeps the last writer's version: {Encoding.UTF8.GetString(kept!.Entity.Document.Span)}");

            // 5. Every node's own stores agree with its source, and every source holds the same states.
            var rows = new List<(int Node, long States, long Live, string Root, long Conflicts, bool Consistent)>();
            for (var i = 0; i < Nodes; i++)
            {
                var (states, live, root) = await SummarizeAsync(hosts[i]);
                var consistent = await CheckAsync(hosts[i]);
                var conflicts = (await Peering(hosts[i]).GetConflictsAsync(maxCount: 10_000)).Count;
                rows.Add((i + 1, states, live, root, conflicts, consistent));
            }

            output.WriteLine();
            output.WriteLine("node  states  live  conflicts  deep check  Merkle root");
            foreach (var row in rows)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{row.Node,4}  {row.States,6}  {row.Live,4}  {row.Conflicts,9}  {(row.Consistent ? "clean" : "DIFFERS"),10}  {row.Root}"));
            }

            var agree = rows.Select(r => r.Root).Distinct().Count() == 1 && rows.All(r => r.Consistent) && rows.All(r => r.States == 191);
            output.WriteLine(agree ? "All nodes agree." : "The nodes do NOT agree.");
            return agree ? 0 : 1;
        }
        finally
        {
            foreach (var host in hosts.Where(h => h is not null))
            {
                await host.StopAsync();
                host.Dispose();
            }

            foreach (var relay in relays)
            {
                if (relay is not null)
                {
                    await relay.DisposeAsync();
                }
            }

            SqliteConnection.ClearAllPools();
            if (args.Length < 2)
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static async Task<IHost> StartNodeAsync(int index, string data, (string Private, string Public)[] keys, int[] ports, Relay[,] relays)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddCrossStoreSync(o => o.AddCollection(Collection, vectorDimension: 4))
            .UseSqlite(o => o.DirectoryPath = Path.Combine(data, "node" + (index + 1).ToString(CultureInfo.InvariantCulture)))
            .AddPeering(o =>
            {
                o.NodeId = index + 1;
                o.SigningKey = keys[index].Private;
                o.ListenUrl = $"http://127.0.0.1:{ports[index]}";
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
                o.RetryMaxDelay = TimeSpan.FromSeconds(1);
                for (var j = 0; j < Nodes; j++)
                {
                    if (j != index)
                    {
                        o.Peers.Add(new PeerOptions { NodeId = j + 1, Url = $"http://127.0.0.1:{relays[index, j].Port}", PublicKey = keys[j].Public });
                    }
                }
            });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static void Partition(Relay[,] relays, int node, bool cut)
    {
        for (var other = 0; other < Nodes; other++)
        {
            if (other == node)
            {
                continue;
            }

            foreach (var relay in new[] { relays[node, other], relays[other, node] })
            {
                if (cut)
                {
                    relay.Cut();
                }
                else
                {
                    relay.Mend();
                }
            }
        }
    }

    private static async Task SyncAllAsync(IHost[] hosts)
    {
        for (var i = 0; i < Nodes; i++)
        {
            for (var j = 0; j < Nodes; j++)
            {
                if (i != j)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                    await Peering(hosts[i]).SyncNowAsync(j + 1, timeout.Token);
                }
            }
        }
    }

    /// <summary>States (tombstones included), live entities and the Merkle root of a node's source.</summary>
    private static async Task<(long States, long Live, string Root)> SummarizeAsync(IHost host)
    {
        var log = await host.Services.GetRequiredService<IReplicationWriter>().GetLogAsync();
        var tree = new MerkleTree(MerkleTree.MinDepth);
        long states = 0, live = 0;
        string? after = null;
        while (true)
        {
            var page = await log.ScanStateDigestsAsync(Collection, BucketRange.All, after, 1000, CancellationToken.None);
            foreach (var state in page)
            {
                var keyHash = KeyHash.Compute(Collection, state.Id);
                tree.Add(keyHash, EntityDigestHash.Compute(keyHash, state.Version.Value, state.ContentHash, state.Deleted ? UInt128.One : UInt128.Zero));
                states++;
                live += state.Deleted ? 0 : 1;
            }

            if (page.Count < 1000)
            {
                return (states, live, tree.Root.ToString("X32", CultureInfo.InvariantCulture));
            }

            after = page[^1].Id;
        }
    }

    /// <summary>Waits until the node's replicas applied its log, then a deep consistency check of its own stores.</summary>
    private static async Task<bool> CheckAsync(IHost host)
    {
        var head = host.Services.GetRequiredService<IReplicationWriter>().Head;
        if (head > 0 && await Manager(host).WaitForSyncAsync(new SyncTicket(new CrossStoreSync.Log.LsnRange(1, head), default), TimeSpan.FromMinutes(1)) != SyncWaitOutcome.Synced)
        {
            return false;
        }

        var report = await host.Services.GetRequiredService<IConsistencyChecker>().CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true });
        return report.IsConsistent;
    }

    private static SyncEntity Note(string id, string text) => SyncEntity.FromJson(
        new EntityKey(Collection, id),
        System.Text.Json.JsonSerializer.Serialize(new { text }),
        new float[] { text.Length, 1, 0, 1 },
        [new SyncEdge("MENTIONS", new EntityKey(Collection, "shared"))]);

    private static ISyncManager Manager(IHost host) => host.Services.GetRequiredService<ISyncManager>();

    private static IPeerReplication Peering(IHost host) => host.Services.GetRequiredService<IPeerReplication>();

    private static CrossStoreSync.Stores.IDocumentStore Source(IHost host) => host.Services.GetRequiredService<CrossStoreSync.Sqlite.Log.SqliteChangeLog>().Documents;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
