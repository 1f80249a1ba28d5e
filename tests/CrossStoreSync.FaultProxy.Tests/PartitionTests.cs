using System.Globalization;
using System.Net.Sockets;
using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class PartitionTests
{
    [Fact]
    public async Task Stall_partition_withholds_both_directions_and_heal_delivers_everything_in_order()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);

        proxy.Partition();
        Assert.True(proxy.IsBlackholed(Direction.Upstream) && proxy.IsBlackholed(Direction.Downstream));
        var up = Messages("up", 200);
        var down = Messages("down", 200);
        var atServer = pair.Server.ReceiveStringAsync(up.Sum(m => m.Length));
        var atClient = pair.Client.ReceiveStringAsync(down.Sum(m => m.Length));

        // Many small writes, so order must hold across chunks and not only within one.
        foreach (var (u, d) in up.Zip(down))
        {
            await pair.Client.SendAllAsync(u);
            await pair.Server.SendAllAsync(d);
        }

        await Wait.AssertPendingAsync(Task.WhenAny(atServer, atClient));
        Assert.Equal(0, proxy.Stats.Upstream.BytesForwarded);
        Assert.Equal(0, proxy.Stats.Downstream.BytesForwarded);

        proxy.Heal();
        Assert.Equal(string.Concat(up), await atServer.WaitAsync(Wait.Long));
        Assert.Equal(string.Concat(down), await atClient.WaitAsync(Wait.Long));
    }

    [Fact]
    public async Task A_large_stream_and_its_close_sent_during_a_partition_arrive_intact_after_heal()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);
        proxy.Partition();

        // More than the proxy holds per direction: the rest waits in socket buffers or in the sender (flow control).
        var payload = Sockets.RandomBytes(4 << 20);
        var sending = Task.Run(async () =>
        {
            await pair.Client.SendAllAsync(payload);
            pair.Client.Shutdown(SocketShutdown.Send);
        });
        var received = pair.Server.ReceiveExactlyAsync(payload.Length);
        await Wait.AssertPendingAsync(received);

        proxy.Heal();
        Assert.Equal(Sockets.Hash(payload), Sockets.Hash(await received.WaitAsync(Wait.Long)));
        await sending.WaitAsync(Wait.Long);
        await pair.Server.AssertEndOfStreamAsync();
    }

    [Fact]
    public async Task Connections_made_during_a_partition_are_held_before_the_target_until_heal()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        proxy.Partition();

        // The client's connect succeeds (the kernel completes the handshake) but the server never sees it.
        using var client = await Sockets.ConnectAsync(proxy.EndPoint);
        await client.SendAllAsync("hello");
        var accepted = target.AcceptAsync();
        await Wait.AssertPendingAsync(accepted);

        proxy.Heal();
        using var server = await accepted.WaitAsync(Wait.Long);
        Assert.Equal("hello", await server.ReceiveStringAsync(5).WaitAsync(Wait.Long));
    }

    [Fact]
    public async Task Http_request_stalls_during_a_partition_and_completes_after_heal()
    {
        await using var web = await TestWebServer.StartAsync("n");
        await using var proxy = new TcpFaultProxy(web.EndPoint);
        using var http = TestWebServer.ClientThrough(proxy);
        Assert.Equal("n", await http.GetStringAsync("name")); // opens the pooled connection the next request reuses

        proxy.Partition();
        var request = http.GetStringAsync("name");
        await Wait.AssertPendingAsync(request);

        proxy.Heal();
        Assert.Equal("n", await request.WaitAsync(Wait.Long));
        Assert.Equal(1, proxy.Stats.ConnectionsAccepted);
    }

    [Fact]
    public async Task Reset_partition_fails_in_flight_requests_at_once_and_holds_the_retry_until_heal()
    {
        await using var web = await TestWebServer.StartAsync("n");
        await using var proxy = new TcpFaultProxy(web.EndPoint);
        using var http = TestWebServer.ClientThrough(proxy);
        var hanging = http.GetStringAsync("hang");
        await web.WaitForHangingRequestAsync();

        proxy.Partition(PartitionMode.Reset);
        await Wait.AssertConnectionLostAsync(hanging);
        Assert.Equal(1, proxy.Stats.Resets);

        var retry = http.GetStringAsync("name");
        await Wait.AssertPendingAsync(retry);
        proxy.Heal();
        Assert.Equal("n", await retry.WaitAsync(Wait.Long));
    }

    private static string[] Messages(string prefix, int count) =>
        [.. Enumerable.Range(0, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{prefix}:{i:D4};"))];
}
