using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace CrossStoreSync.FaultProxy;

/// <summary>
/// One client connection of a <see cref="TcpFaultProxy"/> and its connection to the target: two pumps (one per
/// direction), each a reader that runs ahead into a bounded queue and a writer that applies the direction's faults.
/// </summary>
internal sealed class ProxyConnection
{
    private const int ChunkSize = 16 * 1024;

    // Bounds what one direction of one connection holds (512 KiB) while delayed or blackholed; beyond it the reader
    // stops reading and TCP flow control pushes back on the sender, as a full network path would.
    private const int ChunksInFlight = 32;

    private readonly Socket _client;
    private readonly Socket _server;
    private readonly IPEndPoint _target;
    private readonly LinkFaults _upstream;
    private readonly LinkFaults _downstream;
    private readonly DirectionCounters _upstreamCounters;
    private readonly DirectionCounters _downstreamCounters;

    // Never disposed: it has no timer or linked parent, and disposing would race with a concurrent Close().
    private readonly CancellationTokenSource _closing = new();
    private int _closed;

    public ProxyConnection(Socket client, IPEndPoint target, LinkFaults upstream, LinkFaults downstream,
        DirectionCounters upstreamCounters, DirectionCounters downstreamCounters)
    {
        _client = client;
        _target = target;
        _server = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _upstream = upstream;
        _downstream = downstream;
        _upstreamCounters = upstreamCounters;
        _downstreamCounters = downstreamCounters;
    }

    /// <summary>Runs the connection to its end; never throws for network errors.</summary>
    public async Task RunAsync()
    {
        var ct = _closing.Token;
        try
        {
            _client.NoDelay = true;

            // A TCP handshake needs both directions, so while either is blackholed a new connection is held before
            // it reaches the target: the server never sees it, like a SYN or SYN-ACK lost in a partition. On heal
            // it connects and forwards whatever the client sent meanwhile (including its close).
            while (_upstream.IsBlackholed || _downstream.IsBlackholed)
            {
                await _upstream.WaitOpenAsync(ct).ConfigureAwait(false);
                await _downstream.WaitOpenAsync(ct).ConfigureAwait(false);
            }

            await _server.ConnectAsync(_target, ct).ConfigureAwait(false);

            // Without it Nagle and delayed ACKs add ~40 ms stalls to small HTTP messages: latency the test did not ask for.
            _server.NoDelay = true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Closed while held, or the target refused (its node is down): the client sees a reset, as from a closed port.
            Close(reset: true);
            return;
        }

        await Task.WhenAll(
            PumpAsync(_client, _server, _upstream, _upstreamCounters),
            PumpAsync(_server, _client, _downstream, _downstreamCounters)).ConfigureAwait(false);
        Close(reset: false);
    }

    /// <summary>
    /// Closes both sockets and stops the pumps; with <paramref name="reset"/> the peers get a TCP RST (linger 0).
    /// Returns false when the connection was already closed. Thread-safe.
    /// </summary>
    public bool Close(bool reset)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return false;
        }

        // Cancel first: the pumps then see a cancelled token, not a socket error they would forward as a reset.
        _closing.Cancel();
        CloseSocket(_client, reset);
        CloseSocket(_server, reset);
        return true;
    }

    /// <summary>Closes <paramref name="socket"/>, with a TCP RST when <paramref name="reset"/> is set.</summary>
    internal static void CloseSocket(Socket socket, bool reset)
    {
        if (reset)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already gone: there is nothing left to reset.
            }
        }

        socket.Dispose();
    }

    private async Task PumpAsync(Socket source, Socket destination, LinkFaults faults, DirectionCounters counters)
    {
        // The reader runs ahead of the writer so a delay is latency, not throughput: each chunk waits for its own
        // due time, not for the sum of its predecessors' delays.
        var chunks = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(ChunksInFlight) { SingleReader = true, SingleWriter = true });
        var reading = ReadAsync(source, chunks.Writer, faults, counters);
        await WriteAsync(destination, chunks.Reader, faults, counters).ConfigureAwait(false);
        await reading.ConfigureAwait(false);
        while (chunks.Reader.TryRead(out var left))
        {
            left.Release();
        }
    }

    private async Task ReadAsync(Socket source, ChannelWriter<Chunk> chunks, LinkFaults faults, DirectionCounters counters)
    {
        var ct = _closing.Token;
        var reset = false;
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
                int count;
                try
                {
                    count = await source.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, ct).ConfigureAwait(false);
                    if (count > 0)
                    {
                        counters.AddReceived(count);
                        await chunks.WriteAsync(new Chunk(buffer, count, DueAt(faults), Reset: false), ct).ConfigureAwait(false);
                    }
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }

                if (count == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    break;
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (ct.IsCancellationRequested)
            {
                return; // the connection is closing: nothing more to forward
            }

            reset = true; // the sender reset the connection (or it broke): forwarded as a reset
        }

        // The end of the stream (FIN or RST) is queued behind the data before it and delayed and held like it.
        try
        {
            await chunks.WriteAsync(new Chunk(null, 0, DueAt(faults), reset), ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Closing meanwhile.
        }
    }

    private async Task WriteAsync(Socket destination, ChannelReader<Chunk> chunks, LinkFaults faults, DirectionCounters counters)
    {
        var ct = _closing.Token;
        try
        {
            while (true)
            {
                var chunk = await chunks.ReadAsync(ct).ConfigureAwait(false);
                try
                {
                    await WaitUntilAsync(chunk.DueTimestamp, ct).ConfigureAwait(false);

                    // Checked after the delay, so a blackhole that starts while a chunk is delayed still holds it.
                    await faults.WaitOpenAsync(ct).ConfigureAwait(false);
                    if (chunk.Buffer is null)
                    {
                        if (chunk.Reset)
                        {
                            Close(reset: true);
                        }
                        else
                        {
                            destination.Shutdown(SocketShutdown.Send); // half-close: the other direction keeps flowing
                        }

                        return;
                    }

                    var sent = 0;
                    while (sent < chunk.Count)
                    {
                        sent += await destination.SendAsync(chunk.Buffer.AsMemory(sent, chunk.Count - sent), SocketFlags.None, ct).ConfigureAwait(false);
                    }

                    counters.AddForwarded(chunk.Count);
                }
                finally
                {
                    chunk.Release();
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The receiver is gone (or we are closing): end both sides, as the server's RST would reach the client.
            Close(reset: true);
        }
    }

    private static long DueAt(LinkFaults faults)
    {
        var now = Stopwatch.GetTimestamp();
        var delay = faults.Delay;
        return delay <= TimeSpan.Zero ? now : now + (long)Math.Ceiling(delay.TotalSeconds * Stopwatch.Frequency);
    }

    private static async ValueTask WaitUntilAsync(long dueTimestamp, CancellationToken ct)
    {
        // Task.Delay has millisecond granularity and may wake a little early: loop until the due time has really
        // passed, so a configured delay is a lower bound tests can assert.
        TimeSpan remaining;
        while ((remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), dueTimestamp)) > TimeSpan.Zero)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining.TotalMilliseconds)), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Bytes read from one side (a pooled buffer), or the end of the stream when <see cref="Buffer"/> is null.</summary>
    private readonly record struct Chunk(byte[]? Buffer, int Count, long DueTimestamp, bool Reset)
    {
        public void Release()
        {
            if (Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
            }
        }
    }
}
