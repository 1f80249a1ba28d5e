using System.Net.Sockets;
using CrossStoreSync.FaultProxy.Tests.Support;

namespace CrossStoreSync.FaultProxy.Tests;

public sealed class DisposeTests
{
    [Fact]
    public async Task Dispose_resets_every_connection_stops_listening_and_waits_for_the_pumps()
    {
        using var target = new LoopbackListener();
        var proxy = new TcpFaultProxy(target.EndPoint);
        using var pair = await SocketPair.ConnectAsync(proxy, target);
        proxy.Blackhole(Direction.Upstream);
        using var held = await Sockets.ConnectAsync(proxy.EndPoint); // held before the target by the blackhole

        await proxy.DisposeAsync().AsTask().WaitAsync(Wait.Long);

        // Every connection task removes itself before it completes, and dispose awaited them all.
        Assert.Equal(0, proxy.Stats.OpenConnections);
        await Wait.AssertResetAsync(pair.Client);
        await Wait.AssertResetAsync(pair.Server);
        await Wait.AssertResetAsync(held);
        var refused = await Assert.ThrowsAsync<SocketException>(() => Sockets.ConnectAsync(proxy.EndPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        await proxy.DisposeAsync(); // idempotent
    }
}
