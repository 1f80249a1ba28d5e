using System.Net;
using System.Net.Sockets;

namespace CrossStoreSync.FaultProxy;

/// <summary>
/// TEST CODE — a TCP proxy on 127.0.0.1 that forwards every accepted connection to <see cref="Target"/>, full
/// duplex, and injects network faults at run time: partitions, one-way loss, latency and resets. It stands in for
/// <c>tc netem</c>, which this kernel lacks. Every fault applies per direction (<see cref="Direction"/>) to open and
/// new connections alike and can be changed from any thread at any time.
/// </summary>
/// <remarks>
/// <para>
/// Withheld bytes are never dropped: a blackholed direction stops forwarding (the proxy keeps reading up to 512 KiB
/// per connection and direction, then TCP flow control stalls the sender), and on heal everything held is forwarded
/// in order, followed by the sender's close if it closed meanwhile. That is what TCP does across a partition that
/// heals before the endpoints time out; a request an HTTP client has given up on may therefore still reach the server
/// late, as it can in a real network. To model connection loss instead, use <see cref="ResetAll"/> or
/// <see cref="PartitionMode.Reset"/>.
/// </para>
/// <para>
/// A connection accepted while either direction is blackholed is held before it reaches the target (the client's
/// connect succeeds, as the kernel completes the handshake, but nothing happens) and connects on heal. If the target
/// refuses, the client's connection is reset, as a node that is down would.
/// </para>
/// </remarks>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly LinkFaults _upstream = new();
    private readonly LinkFaults _downstream = new();
    private readonly DirectionCounters _upstreamCounters = new();
    private readonly DirectionCounters _downstreamCounters = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<ProxyConnection, Task> _connections = [];
    private readonly Task _acceptLoop;
    private IPEndPoint _target;
    private long _accepted;
    private long _resets;
    private long _dropped;
    private int _dropNext;
    private int _disposed;

    /// <summary>Starts listening on 127.0.0.1 on a free port and forwarding to <paramref name="target"/>.</summary>
    /// <param name="target">Where accepted connections are forwarded, typically a node's real listening endpoint.</param>
    public TcpFaultProxy(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _target = target;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(512);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;

        // Off the caller's synchronization context (xunit's has as many threads as cores).
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The endpoint clients connect to: 127.0.0.1 and <see cref="Port"/>.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The port the proxy listens on.</summary>
    public int Port => EndPoint.Port;

    /// <summary>
    /// Where new connections are forwarded. Changing it (say, after restarting a node on another port) affects new
    /// connections only; open ones keep their target.
    /// </summary>
    public IPEndPoint Target
    {
        get => Volatile.Read(ref _target);
        set => Volatile.Write(ref _target, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>A consistent-enough snapshot of the counters (each counter is read atomically, not all at once).</summary>
    public FaultProxyStats Stats
    {
        get
        {
            int open;
            lock (_lock)
            {
                open = _connections.Count;
            }

            return new FaultProxyStats(Interlocked.Read(ref _accepted), open, Interlocked.Read(ref _resets),
                Interlocked.Read(ref _dropped), _upstreamCounters.Snapshot(), _downstreamCounters.Snapshot());
        }
    }

    /// <summary>Whether <paramref name="direction"/> is blackholed (by <see cref="Partition"/> or <see cref="Blackhole"/>).</summary>
    public bool IsBlackholed(Direction direction) => Faults(direction).IsBlackholed;

    /// <summary>The latency currently added to <paramref name="direction"/>.</summary>
    public TimeSpan GetDelay(Direction direction) => Faults(direction).Delay;

    /// <summary>
    /// Cuts the link: both directions are blackholed until <see cref="Heal()"/>. New connections are accepted and
    /// held; open ones stall (<see cref="PartitionMode.Stall"/>) or are reset (<see cref="PartitionMode.Reset"/>).
    /// </summary>
    public void Partition(PartitionMode mode = PartitionMode.Stall)
    {
        // Blackhole before resetting, so a client's immediate retry already finds the link cut.
        _upstream.Blackhole();
        _downstream.Blackhole();
        if (mode == PartitionMode.Reset)
        {
            ResetAll();
        }
    }

    /// <summary>One-way loss: bytes in <paramref name="direction"/> are withheld (not dropped) until healed; the other direction flows.</summary>
    public void Blackhole(Direction direction) => Faults(direction).Blackhole();

    /// <summary>Lifts the blackhole of both directions; withheld bytes are then forwarded in order. Delays stay.</summary>
    public void Heal()
    {
        _upstream.Heal();
        _downstream.Heal();
    }

    /// <summary>Lifts the blackhole of <paramref name="direction"/> only.</summary>
    public void Heal(Direction direction) => Faults(direction).Heal();

    /// <summary>
    /// Adds at least <paramref name="delay"/> of latency to every chunk read in <paramref name="direction"/> from now
    /// on, preserving order; chunks are pipelined, so throughput is not divided by the delay.
    /// <see cref="TimeSpan.Zero"/> removes it.
    /// </summary>
    public void Delay(Direction direction, TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        Faults(direction).Delay = delay;
    }

    /// <summary>
    /// Aborts every open connection with a TCP RST on both sides (linger 0, then close); new connections are still
    /// accepted. Returns how many were reset.
    /// </summary>
    public int ResetAll()
    {
        ProxyConnection[] open;
        lock (_lock)
        {
            open = [.. _connections.Keys];
        }

        var count = open.Count(c => c.Close(reset: true));
        Interlocked.Add(ref _resets, count);
        return count;
    }

    /// <summary>
    /// Resets the next <paramref name="count"/> accepted connections at once, before they reach the target
    /// (the client's connect succeeds, its first read or write fails). Replaces an earlier count; 0 cancels it.
    /// </summary>
    public void DropNextConnections(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Volatile.Write(ref _dropNext, count);
    }

    /// <summary>
    /// Stops listening, resets every open connection (held ones included) and waits until all their pumps have
    /// ended. Idempotent.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();

        // Once the accept loop has ended no connection can be added, so the snapshot below is complete.
        await _acceptLoop.ConfigureAwait(false);
        KeyValuePair<ProxyConnection, Task>[] open;
        lock (_lock)
        {
            open = [.. _connections];
        }

        foreach (var (connection, _) in open)
        {
            connection.Close(reset: true);
        }

        await Task.WhenAll(open.Select(c => c.Value)).ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{EndPoint} -> {Target}";

    private LinkFaults Faults(Direction direction) => direction switch
    {
        Direction.Upstream => _upstream,
        Direction.Downstream => _downstream,
        _ => throw new ArgumentOutOfRangeException(nameof(direction), direction, null),
    };

    private async Task AcceptLoopAsync()
    {
        var ct = _stopping.Token;
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (SocketException e) when (!ct.IsCancellationRequested && e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue; // a client gave up before it was accepted
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return; // disposed (or the listener broke: nothing more to accept)
            }

            Interlocked.Increment(ref _accepted);
            if (TryTakeDrop())
            {
                Interlocked.Increment(ref _dropped);
                ProxyConnection.CloseSocket(client, reset: true);
                continue;
            }

            var connection = new ProxyConnection(client, Target, _upstream, _downstream, _upstreamCounters, _downstreamCounters);

            // Registered under the lock together with its task, and removed only by that task after the lock is
            // released here: DisposeAsync and ResetAll see every connection that can still do anything.
            lock (_lock)
            {
                _connections.Add(connection, RunAsync(connection));
            }
        }
    }

    private async Task RunAsync(ProxyConnection connection)
    {
        // Yield first so the connection runs outside the accept loop's lock.
        await Task.Yield();
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            lock (_lock)
            {
                _connections.Remove(connection);
            }
        }
    }

    private bool TryTakeDrop()
    {
        var left = Volatile.Read(ref _dropNext);
        while (left > 0)
        {
            var seen = Interlocked.CompareExchange(ref _dropNext, left - 1, left);
            if (seen == left)
            {
                return true;
            }

            left = seen;
        }

        return false;
    }
}
