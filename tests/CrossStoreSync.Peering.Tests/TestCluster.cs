using System.Net;
using System.Net.Sockets;
using CrossStoreSync.Configuration;
using CrossStoreSync.Model;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Tests;

/// <summary>Nodes of one test, each in its own folder with its own key and port, started in this process.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "css-peer-tests", Guid.NewGuid().ToString("N"));
    private readonly List<TestNode> _running = [];

    public TestCluster(int count)
    {
        Members = Enumerable.Range(1, count).Select(i =>
        {
            var (privateKey, publicKey) = PeerKeys.Generate();
            return new Member(i, privateKey, publicKey, FreePort(), Path.Combine(_root, "node" + i));
        }).ToArray();
    }

    public IReadOnlyList<Member> Members { get; }

    /// <summary>The URL other nodes use to reach <paramref name="member"/> (overridable, e.g. through a proxy).</summary>
    public Func<Member, Member, string> UrlOf { get; set; } = (_, to) => $"http://127.0.0.1:{to.Port}";

    public Member this[int nodeId] => Members[nodeId - 1];

    public async Task<TestNode> StartAsync(int nodeId, Action<PeeringOptions>? peering = null, Action<CrossStoreSyncOptions>? sync = null, TimeProvider? time = null, Action<IServiceCollection>? configure = null)
    {
        var member = this[nodeId];
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("CSS_TEST_LOG") == "1")
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning).AddFilter("System.Net.Http", LogLevel.Warning).SetMinimumLevel(LogLevel.Debug);
        }

        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("notes", 4);
                o.AddCollection("secret");
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(5);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(50);
                o.PollInterval = TimeSpan.FromMilliseconds(50);
                sync?.Invoke(o);
            })
            .UseSqlite(o => o.DirectoryPath = member.Directory)
            .AddPeering(o =>
            {
                o.NodeId = member.NodeId;
                o.SigningKey = member.PrivateKey;
                o.ListenUrl = $"http://127.0.0.1:{member.Port}";
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(500);
                o.LongPollTimeout = TimeSpan.FromSeconds(5);
                foreach (var other in Members.Where(m => m.NodeId != member.NodeId))
                {
                    var peer = new PeerOptions { NodeId = other.NodeId, Url = UrlOf(member, other), PublicKey = other.PublicKey };
                    peer.Collections.Add("notes");
                    o.Peers.Add(peer);
                }

                peering?.Invoke(o);
            });
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        var node = new TestNode(host);
        _running.Add(node);
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _running)
        {
            await node.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open by a dying process is left to the temp cleaner.
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public sealed record Member(int NodeId, string PrivateKey, string PublicKey, int Port, string Directory);
}

/// <summary>A clock that runs at the system's pace with an adjustable offset.</summary>
public sealed class OffsetTimeProvider : TimeProvider
{
    public TimeSpan Offset { get; set; }

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
}

internal static class Notes
{
    public static SyncEntity Note(string id, string text, int edges = 1) => SyncEntity.FromJson(
        new EntityKey("notes", id),
        $$"""{"text":"{{text}}"}""",
        new float[] { 1, 2, 3, text.Length },
        Enumerable.Range(0, edges).Select(i => new SyncEdge("LINKS", new EntityKey("notes", "n" + i))).ToArray());
}
