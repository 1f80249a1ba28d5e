using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CrossStoreSync.FaultProxy.Tests.Support;

/// <summary>TEST CODE — a raw TCP server on 127.0.0.1 whose accepted sockets the test drives directly.</summary>
internal sealed class LoopbackListener : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public LoopbackListener()
    {
        _listener.Start();
        EndPoint = (IPEndPoint)_listener.LocalEndpoint;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>Whether a connection waits to be accepted (an instant check, no waiting).</summary>
    public bool Pending => _listener.Pending();

    public Task<Socket> AcceptAsync() => _listener.AcceptSocketAsync();

    public void Dispose() => _listener.Dispose();
}

/// <summary>TEST CODE — both ends of one connection through a proxy: the client's socket and the server's accepted one.</summary>
internal sealed class SocketPair(Socket client, Socket server) : IDisposable
{
    public Socket Client { get; } = client;

    public Socket Server { get; } = server;

    public static async Task<SocketPair> ConnectAsync(TcpFaultProxy proxy, LoopbackListener target)
    {
        var client = await Sockets.ConnectAsync(proxy.EndPoint);
        var server = await target.AcceptAsync().WaitAsync(Wait.Long);
        return new SocketPair(client, server);
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}

/// <summary>TEST CODE — socket and payload helpers.</summary>
internal static class Sockets
{
    public static async Task<Socket> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint).WaitAsync(Wait.Long);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static async Task SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data)
    {
        for (var sent = 0; sent < data.Length;)
        {
            sent += await socket.SendAsync(data[sent..], SocketFlags.None);
        }
    }

    public static Task SendAllAsync(this Socket socket, string text) => socket.SendAllAsync(Encoding.ASCII.GetBytes(text));

    /// <summary>Receives exactly <paramref name="count"/> bytes; fails if the stream ends first.</summary>
    public static async Task<byte[]> ReceiveExactlyAsync(this Socket socket, int count)
    {
        var data = new byte[count];
        for (var received = 0; received < count;)
        {
            var n = await socket.ReceiveAsync(data.AsMemory(received), SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException($"The stream ended after {received} of {count} bytes.");
            }

            received += n;
        }

        return data;
    }

    public static async Task<string> ReceiveStringAsync(this Socket socket, int length) =>
        Encoding.ASCII.GetString(await socket.ReceiveExactlyAsync(length));

    /// <summary>Asserts that the peer has closed its sending side (a FIN, not a reset) after everything it sent was read.</summary>
    public static async Task AssertEndOfStreamAsync(this Socket socket)
    {
        var buffer = new byte[1];
        Assert.Equal(0, await socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Wait.Long));
    }

    public static byte[] RandomBytes(int count) => RandomNumberGenerator.GetBytes(count);

    /// <summary>Compares large payloads by hash: a failure message of two hashes beats one of two 8 MiB arrays.</summary>
    public static string Hash(ReadOnlySpan<byte> data) => Convert.ToHexString(SHA256.HashData(data));
}
