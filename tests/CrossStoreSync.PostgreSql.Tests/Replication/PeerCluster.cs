using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.PostgreSql.Tests.Replication;

/// <summary>
/// Peer nodes of one test started in this process with <c>AddPeering</c> on loopback (as the peering tests'
/// TestCluster), each with its own key, port and source: a fresh PostgreSQL database (<c>UsePostgreSql</c>, with SQLite
/// vector and graph replicas in its folder) or an embedded SQLite folder (<c>UseSqlite</c>).
/// </summary>
public sealed class PeerCluster : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _root;
    private readonly List<PeerNode> _running = [];

    private PeerCluster(IReadOnlyList<Member> members, string root)
    {
        Members = members;
        _root = root;
    }

    public IReadOnlyList<Member> Members { get; }

    public Member this[int nodeId] => Members[nodeId - 1];

    /// <summary>Creates the members: node i uses PostgreSQL when <paramref name="postgres"/>(i), SQLite otherwise.</summary>
    public static async Task<PeerCluster> CreateAsync(int count, Func<int, bool> postgres)
    {
        var members = new List<Member>(count);
        var root = Path.Combine(Path.GetTempPath(), "css-pg-peer-tests", Guid.NewGuid().ToString("N"));
        for (var i = 1; i <= count; i++)
        {
            var (privateKey, publicKey) = PeerKeys.Generate();
            var database = postgres(i) ? await PostgresServer.CreateDatabaseAsync("cspeer") : null;
            members.Add(new Member(i, privateKey, publicKey, FreePort(), database, Path.Combine(root, "node" + i.ToString(CultureInfo.InvariantCulture))));
        }

        return new PeerCluster(members, root);
    }

    public async Task<PeerNode> StartAsync(int nodeId)
    {
        var member = this[nodeId];
        Directory.CreateDirectory(member.Directory);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var sync = builder.Services.AddCrossStoreSync(o =>
        {
            o.AddCollection("notes", 4);
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(5);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(50);
            o.PollInterval = TimeSpan.FromMilliseconds(50);
        });
        if (member.Database is { } database)
        {
            builder.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(member.Directory, "vectors.db"), "vectors"));
            builder.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(member.Directory, "graph.db"), "graph"));
            sync.UsePostgreSql(o =>
                {
                    o.ConnectionString = database.ConnectionString;
                    o.Partitions = 4;
                })
                .AddReplica("vectors", sp => sp.GetRequiredService<SqliteVectorStore>())
                .AddReplica("graph", sp => sp.GetRequiredService<SqliteGraphStore>());
        }
        else
        {
            sync.UseSqlite(o => o.DirectoryPath = member.Directory);
        }

        sync.AddPeering(o =>
        {
            o.NodeId = member.NodeId;
            o.SigningKey = member.PrivateKey;
            o.ListenUrl = $"http://127.0.0.1:{member.Port}";
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(500);
            o.LongPollTimeout = TimeSpan.FromSeconds(5);
            foreach (var other in Members.Where(m => m.NodeId != member.NodeId))
            {
                var peer = new PeerOptions { NodeId = other.NodeId, Url = $"http://127.0.0.1:{other.Port}", PublicKey = other.PublicKey };
                peer.Collections.Add("notes");
                o.Peers.Add(peer);
            }
        });
        var host = builder.Build();
        await host.StartAsync();
        var node = new PeerNode(host);
        _running.Add(node);
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _running)
        {
            await node.DisposeAsync();
        }

        foreach (var member in Members)
        {
            if (member.Database is { } database)
            {
                await database.DisposeAsync();
            }
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open by a slow disposal is left to the temp cleaner.
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public sealed record Member(int NodeId, string PrivateKey, string PublicKey, int Port, TestDatabase? Database, string Directory);
}
