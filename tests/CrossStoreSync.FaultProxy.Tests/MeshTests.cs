using System.Net;
using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class MeshTests
{
    [Fact]
    public async Task Each_ordered_pair_of_nodes_has_its_own_proxy_to_the_destination_node()
    {
        var nodes = await StartNodesAsync(3);
        try
        {
            await using var mesh = new FaultProxyMesh([.. nodes.Select(n => n.EndPoint)]);
            foreach (var (from, to) in Links(3))
            {
                using var http = TestWebServer.ClientThrough(mesh.Proxy(from, to));
                Assert.Equal($"n{to}", await http.GetStringAsync("name"));
            }

            Assert.Equal(6, mesh.Proxies.Select(p => p.Port).Distinct().Count());
            Assert.Throws<ArgumentException>(() => mesh.Proxy(1, 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => mesh.Proxy(0, 3));
        }
        finally
        {
            await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task Isolate_cuts_every_link_of_the_node_only_and_HealAll_restores_them()
    {
        var nodes = await StartNodesAsync(3);
        try
        {
            await using var mesh = new FaultProxyMesh([.. nodes.Select(n => n.EndPoint)]);
            mesh.Isolate(1);
            foreach (var (from, to) in Links(3))
            {
                AssertCut(mesh.Proxy(from, to), from == 1 || to == 1);
            }

            using var between = TestWebServer.ClientThrough(mesh.Proxy(0, 2));
            using var toIsolated = TestWebServer.ClientThrough(mesh.Proxy(0, 1));
            Assert.Equal("n2", await between.GetStringAsync("name"));
            var cut = toIsolated.GetStringAsync("name");
            await Wait.AssertPendingAsync(cut);

            mesh.HealAll();
            Assert.Equal("n1", await cut.WaitAsync(Wait.Long));
            Assert.All(mesh.Proxies, p => AssertCut(p, false));
        }
        finally
        {
            await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task PartitionGroups_cuts_only_the_links_between_the_groups()
    {
        // Proxies connect to their target only when a client connects, so these endpoints need no servers.
        await using var mesh = new FaultProxyMesh([.. Enumerable.Range(0, 5).Select(i => new IPEndPoint(IPAddress.Loopback, 1 + i))]);
        int[] a = [0, 1];
        int[] b = [2, 3];

        mesh.PartitionGroups(a, b);
        foreach (var (from, to) in Links(5))
        {
            AssertCut(mesh.Proxy(from, to), (a.Contains(from) && b.Contains(to)) || (b.Contains(from) && a.Contains(to)));
        }

        Assert.Throws<ArgumentException>(() => mesh.PartitionGroups([0], [0, 4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => mesh.PartitionGroups([0], [5]));
    }

    [Fact]
    public async Task Retarget_sends_new_connections_to_a_restarted_node()
    {
        using var node0 = new LoopbackListener();
        using var node1 = new LoopbackListener();
        await using var mesh = new FaultProxyMesh([node0.EndPoint, node1.EndPoint]);
        using var restarted = new LoopbackListener();

        mesh.Retarget(1, restarted.EndPoint);
        Assert.Equal(restarted.EndPoint, mesh.Proxy(0, 1).Target);
        Assert.Equal(node0.EndPoint, mesh.Proxy(1, 0).Target);
        using var pair = await SocketPair.ConnectAsync(mesh.Proxy(0, 1), restarted);
        await pair.Client.SendAllAsync("hi");
        Assert.Equal("hi", await pair.Server.ReceiveStringAsync(2).WaitAsync(Wait.Long));
    }

    private static async Task<TestWebServer[]> StartNodesAsync(int count) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => TestWebServer.StartAsync($"n{i}")));

    private static IEnumerable<(int From, int To)> Links(int nodes) =>
        from i in Enumerable.Range(0, nodes) from j in Enumerable.Range(0, nodes) where i != j select (i, j);

    private static void AssertCut(TcpFaultProxy proxy, bool cut)
    {
        Assert.Equal(cut, proxy.IsBlackholed(Direction.Upstream));
        Assert.Equal(cut, proxy.IsBlackholed(Direction.Downstream));
    }
}
