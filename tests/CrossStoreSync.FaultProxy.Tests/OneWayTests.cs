using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class OneWayTests
{
    [Theory]
    [InlineData(Direction.Upstream)]
    [InlineData(Direction.Downstream)]
    public async Task Blackhole_withholds_one_direction_while_the_other_flows(Direction cut)
    {
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);
        var (sender, receiver) = Ends(pair, cut);

        proxy.Blackhole(cut);
        Assert.True(proxy.IsBlackholed(cut));
        Assert.False(proxy.IsBlackholed(Opposite(cut)));
        await sender.SendAllAsync("held");
        var held = receiver.ReceiveStringAsync(4);

        await receiver.SendAllAsync("flows");
        Assert.Equal("flows", await sender.ReceiveStringAsync(5).WaitAsync(Wait.Long));
        await Wait.AssertPendingAsync(held);

        proxy.Heal(cut);
        Assert.Equal("held", await held.WaitAsync(Wait.Long));
    }

    [Theory]
    [InlineData(Direction.Upstream)]
    [InlineData(Direction.Downstream)]
    public async Task Delay_adds_at_least_the_configured_latency_and_keeps_order(Direction direction)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        using var target = new LoopbackListener();
        await using var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);
        var (sender, receiver) = Ends(pair, direction);

        proxy.Delay(direction, delay); // on an open connection
        Assert.Equal(delay, proxy.GetDelay(direction));
        Assert.Equal(TimeSpan.Zero, proxy.GetDelay(Opposite(direction)));
        var messages = Enumerable.Range(0, 20).Select(i => string.Create(CultureInfo.InvariantCulture, $"m{i:D2};")).ToArray();
        var received = receiver.ReceiveStringAsync(messages.Sum(m => m.Length));
        var clock = Stopwatch.StartNew();
        foreach (var message in messages)
        {
            await sender.SendAllAsync(message);
        }

        Assert.Equal(string.Concat(messages), await received.WaitAsync(Wait.Long));
        Assert.True(clock.Elapsed >= delay, $"Took {clock.Elapsed.TotalMilliseconds} ms, less than the {delay.TotalMilliseconds} ms delay.");
    }

    [Fact]
    public async Task Delay_in_both_directions_adds_to_an_http_round_trip_and_zero_removes_it()
    {
        var delay = TimeSpan.FromMilliseconds(150);
        await using var web = await TestWebServer.StartAsync("n");
        await using var proxy = new TcpFaultProxy(web.EndPoint);
        using var http = TestWebServer.ClientThrough(proxy);
        Assert.Equal("n", await http.GetStringAsync("name"));

        proxy.Delay(Direction.Upstream, delay);
        proxy.Delay(Direction.Downstream, delay);
        var clock = Stopwatch.StartNew();
        Assert.Equal("n", await http.GetStringAsync("name"));
        Assert.True(clock.Elapsed >= 2 * delay, $"Took {clock.Elapsed.TotalMilliseconds} ms, less than twice the {delay.TotalMilliseconds} ms delay.");

        proxy.Delay(Direction.Upstream, TimeSpan.Zero);
        proxy.Delay(Direction.Downstream, TimeSpan.Zero);
        Assert.Equal(TimeSpan.Zero, proxy.GetDelay(Direction.Upstream));
        Assert.Equal("n", await http.GetStringAsync("name"));
        Assert.Throws<ArgumentOutOfRangeException>(() => proxy.Delay(Direction.Upstream, TimeSpan.FromMilliseconds(-1)));
    }

    private static (Socket Sender, Socket Receiver) Ends(SocketPair pair, Direction direction) =>
        direction == Direction.Upstream ? (pair.Client, pair.Server) : (pair.Server, pair.Client);

    private static Direction Opposite(Direction direction) =>
        direction == Direction.Upstream ? Direction.Downstream : Direction.Upstream;
}
