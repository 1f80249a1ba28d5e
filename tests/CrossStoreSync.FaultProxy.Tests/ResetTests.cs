using System.Net;
using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class ResetTests
{
    [Fact]
    public async Task ResetAll_aborts_open_connections_with_a_tcp_reset_on_both_sides_and_keeps_accepting()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var first = await SocketPair.ConnectAsync(proxy, target);
        using var second = await SocketPair.ConnectAsync(proxy, target);

        Assert.Equal(2, proxy.ResetAll());
        foreach (var socket in new[] { first.Client, first.Server, second.Client, second.Server })
        {
            await Wait.AssertResetAsync(socket);
        }

        Assert.Equal(2, proxy.Stats.Resets);
        using var third = await SocketPair.ConnectAsync(proxy, target);
        await third.Client.SendAllAsync("ok");
        Assert.Equal("ok", await third.Server.ReceiveStringAsync(2).WaitAsync(Wait.Long));
    }

    [Fact]
    public async Task ResetAll_fails_an_in_flight_http_request_and_the_next_request_succeeds()
    {
        await using var web = await TestWebServer.StartAsync("n");
        await using var proxy = new TcpFaultProxy(web.EndPoint);
        using var http = TestWebServer.ClientThrough(proxy);

        // A fresh client's first request opens a new connection, which the handler never retries on failure.
        var hanging = http.GetStringAsync("hang");
        await web.WaitForHangingRequestAsync();
        Assert.Equal(1, proxy.ResetAll());
        await Wait.AssertConnectionLostAsync(hanging);

        Assert.Equal("n", await http.GetStringAsync("name"));
        Assert.Equal(2, proxy.Stats.ConnectionsAccepted);
    }

    [Fact]
    public async Task DropNextConnections_resets_that_many_new_connections_before_the_target()
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        proxy.DropNextConnections(2);

        for (var i = 0; i < 2; i++)
        {
            await Wait.AssertConnectionResetAsync(proxy.EndPoint);
        }

        using var pair = await SocketPair.ConnectAsync(proxy, target);
        await pair.Client.SendAllAsync("third");
        Assert.Equal("third", await pair.Server.ReceiveStringAsync(5).WaitAsync(Wait.Long));
        Assert.False(target.Pending); // the dropped ones never reached it
        Assert.Equal(3, proxy.Stats.ConnectionsAccepted);
        Assert.Equal(2, proxy.Stats.DroppedConnections);
    }

    [Fact]
    public async Task A_target_that_refuses_connections_resets_the_client()
    {
        IPEndPoint closed;
        using (var gone = new LoopbackListener())
        {
            closed = gone.EndPoint; // nothing listens there once disposed: a node that is down
        }

        await using var proxy = new TcpFaultProxy(closed);
        await Wait.AssertConnectionResetAsync(proxy.EndPoint);
    }
}
