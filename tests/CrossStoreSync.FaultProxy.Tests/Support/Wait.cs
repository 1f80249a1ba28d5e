using System.Net;
using System.Net.Sockets;

namespace CrossStoreSync.FaultProxy.Tests.Support;

/// <summary>TEST CODE — how long tests wait. They wait on tasks with these timeouts and never sleep.</summary>
internal static class Wait
{
    /// <summary>
    /// How long a test watches for something that must not happen (bytes crossing a cut link). Loopback forwarding
    /// takes well under a millisecond, so a leak would show many times over.
    /// </summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    /// <summary>Limit for what must happen; only a guard against hangs on a busy shared 2-core machine.</summary>
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    /// <summary>Asserts that <paramref name="task"/> is still running after <see cref="Quiet"/>; leaves it running.</summary>
    public static async Task AssertPendingAsync(Task task)
    {
        await Assert.ThrowsAsync<TimeoutException>(() => task.WaitAsync(Quiet));
    }

    /// <summary>Asserts that the next receive on <paramref name="socket"/> fails with a TCP reset.</summary>
    public static async Task AssertResetAsync(Socket socket)
    {
        var buffer = new byte[16];
        var error = await Assert.ThrowsAsync<SocketException>(() => socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Long));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }

    /// <summary>
    /// Asserts that a new connection to <paramref name="endPoint"/> is reset: during the connect when the reset
    /// overtakes the report of the completed handshake, else on the first read.
    /// </summary>
    public static async Task AssertConnectionResetAsync(IPEndPoint endPoint)
    {
        Socket socket;
        try
        {
            socket = await Sockets.ConnectAsync(endPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return;
        }

        using (socket)
        {
            await AssertResetAsync(socket);
        }
    }

    /// <summary>Asserts that <paramref name="request"/> fails because its connection broke, not by a timeout or a status code.</summary>
    public static async Task AssertConnectionLostAsync(Task request)
    {
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => request.WaitAsync(Long));
        Assert.Contains(Causes(error), e => e is IOException or SocketException);
    }

    private static IEnumerable<Exception> Causes(Exception error)
    {
        for (var e = error.InnerException; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}
