using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class PassThroughTests
{
    [Fact]
    public async Task Large_random_payloads_cross_intact_in_both_directions_at_once_and_closes_follow_them()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);
        var up = Sockets.RandomBytes(8 << 20);
        var down = Sockets.RandomBytes(6 << 20);

        // Both sides write and read at once: a proxy that served one direction at a time would deadlock once the
        // socket buffers filled.
        var atServer = pair.Server.ReceiveExactlyAsync(up.Length);
        var atClient = pair.Client.ReceiveExactlyAsync(down.Length);
        await Task.WhenAll(pair.Client.SendAllAsync(up), pair.Server.SendAllAsync(down), atServer, atClient).WaitAsync(Wait.Long);
        Assert.Equal(Sockets.Hash(up), Sockets.Hash(await atServer));
        Assert.Equal(Sockets.Hash(down), Sockets.Hash(await atClient));

        // Half-close crosses too, each direction on its own.
        pair.Client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        await pair.Server.AssertEndOfStreamAsync();
        await pair.Server.SendAllAsync("after");
        Assert.Equal("after", await pair.Client.ReceiveStringAsync(5).WaitAsync(Wait.Long));
        pair.Server.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        await pair.Client.AssertEndOfStreamAsync();

        // Each end of stream was forwarded after the last byte before it was counted, so the counts are final.
        var stats = proxy.Stats;
        Assert.Equal(1, stats.ConnectionsAccepted);
        Assert.Equal(up.Length, stats.Upstream.BytesForwarded);
        Assert.Equal(down.Length + 5, stats.Downstream.BytesForwarded);
        Assert.Equal(0, stats.Upstream.BytesHeld);
    }

    [Fact]
    public async Task Concurrent_connections_each_carry_their_own_bytes()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        var pairs = new List<SocketPair>();
        try
        {
            // Sequential connect-then-accept pairs each client with its own server socket.
            for (var i = 0; i < 8; i++)
            {
                pairs.Add(await SocketPair.ConnectAsync(proxy, target));
            }

            var payloads = pairs.Select(_ => Sockets.RandomBytes(256 << 10)).ToArray();
            var received = pairs.Select((p, i) => p.Server.ReceiveExactlyAsync(payloads[i].Length)).ToArray();
            await Task.WhenAll(pairs.Select((p, i) => p.Client.SendAllAsync(payloads[i])).Concat(received)).WaitAsync(Wait.Long);
            for (var i = 0; i < pairs.Count; i++)
            {
                Assert.Equal(Sockets.Hash(payloads[i]), Sockets.Hash(await received[i]));
            }

            Assert.Equal(8, proxy.Stats.ConnectionsAccepted);
            Assert.Equal(8, proxy.Stats.OpenConnections);
        }
        finally
        {
            pairs.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task Http_requests_and_large_bodies_pass_through_kestrel()
    {
        await using var web = await TestWebServer.StartAsync("n1");
        await using var proxy = new TcpFaultProxy(web.EndPoint);
        using var http = TestWebServer.ClientThrough(proxy);

        Assert.Equal("n1", await http.GetStringAsync("name"));
        var body = Sockets.RandomBytes(4 << 20);
        using var content = new ByteArrayContent(body);
        using var response = await http.PostAsync("echo", content);
        response.EnsureSuccessStatusCode();
        Assert.Equal(Sockets.Hash(body), Sockets.Hash(await response.Content.ReadAsByteArrayAsync()));
    }
}
