using System.Net;

namespace CrossStoreSync.FaultProxy;

/// <summary>
/// TEST CODE — one <see cref="TcpFaultProxy"/> per ordered pair of nodes, so every link of a cluster can fail on
/// its own: node <c>i</c> reaches node <c>j</c> at <c>Proxy(i, j).EndPoint</c>, which forwards to node <c>j</c>'s
/// real endpoint. Upstream on that proxy is what <c>i</c> sends to <c>j</c>; downstream is <c>j</c>'s answers.
/// </summary>
public sealed class FaultProxyMesh : IAsyncDisposable
{
    // [from][to]; null on the diagonal (a node does not reach itself through the mesh).
    private readonly TcpFaultProxy?[][] _proxies;

    /// <summary>Starts N×(N−1) proxies for the nodes listening at <paramref name="nodes"/> (node i at index i).</summary>
    public FaultProxyMesh(IReadOnlyList<IPEndPoint> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes.Count, 2, nameof(nodes));
        NodeCount = nodes.Count;
        _proxies = new TcpFaultProxy?[NodeCount][];
        for (var from = 0; from < NodeCount; from++)
        {
            _proxies[from] = new TcpFaultProxy?[NodeCount];
            for (var to = 0; to < NodeCount; to++)
            {
                // Listening sockets only: creation cannot fail half-way short of running out of ports.
                _proxies[from][to] = from == to ? null : new TcpFaultProxy(nodes[to]);
            }
        }
    }

    /// <summary>How many nodes the mesh connects.</summary>
    public int NodeCount { get; }

    /// <summary>Every proxy of the mesh.</summary>
    public IEnumerable<TcpFaultProxy> Proxies => _proxies.SelectMany(row => row).OfType<TcpFaultProxy>();

    /// <summary>The proxy node <paramref name="from"/> dials to reach node <paramref name="to"/>.</summary>
    public TcpFaultProxy Proxy(int from, int to)
    {
        CheckNode(from, nameof(from));
        CheckNode(to, nameof(to));
        return _proxies[from][to] ?? throw new ArgumentException($"Node {from} has no proxy to itself.", nameof(to));
    }

    /// <summary>Points every proxy into <paramref name="node"/> at a new endpoint (the node restarted elsewhere); new connections only.</summary>
    public void Retarget(int node, IPEndPoint endPoint)
    {
        CheckNode(node, nameof(node));
        ArgumentNullException.ThrowIfNull(endPoint);
        foreach (var from in Others(node))
        {
            Proxy(from, node).Target = endPoint;
        }
    }

    /// <summary>Cuts every link into and out of <paramref name="node"/>; links among the other nodes are untouched.</summary>
    public void Isolate(int node, PartitionMode mode = PartitionMode.Stall)
    {
        CheckNode(node, nameof(node));
        foreach (var other in Others(node))
        {
            Proxy(node, other).Partition(mode);
            Proxy(other, node).Partition(mode);
        }
    }

    /// <summary>
    /// Cuts every link between a node of <paramref name="groupA"/> and a node of <paramref name="groupB"/>, both ways.
    /// Links within a group, and of nodes in neither group, are untouched.
    /// </summary>
    public void PartitionGroups(IReadOnlyCollection<int> groupA, IReadOnlyCollection<int> groupB, PartitionMode mode = PartitionMode.Stall)
    {
        ArgumentNullException.ThrowIfNull(groupA);
        ArgumentNullException.ThrowIfNull(groupB);
        foreach (var node in groupA)
        {
            CheckNode(node, nameof(groupA));
        }

        foreach (var node in groupB)
        {
            CheckNode(node, nameof(groupB));
        }

        if (groupA.Intersect(groupB).Any())
        {
            throw new ArgumentException("A node cannot be on both sides of a partition.", nameof(groupB));
        }

        foreach (var a in groupA)
        {
            foreach (var b in groupB)
            {
                Proxy(a, b).Partition(mode);
                Proxy(b, a).Partition(mode);
            }
        }
    }

    /// <summary>Lifts every partition and blackhole of the mesh; withheld bytes are then forwarded. Delays stay.</summary>
    public void HealAll()
    {
        foreach (var proxy in Proxies)
        {
            proxy.Heal();
        }
    }

    /// <summary>Disposes every proxy (see <see cref="TcpFaultProxy.DisposeAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Proxies.Select(p => p.DisposeAsync().AsTask())).ConfigureAwait(false);
    }

    private IEnumerable<int> Others(int node) => Enumerable.Range(0, NodeCount).Where(n => n != node);

    private void CheckNode(int node, string parameter)
    {
        if (node < 0 || node >= NodeCount)
        {
            throw new ArgumentOutOfRangeException(parameter, node, $"Nodes are numbered 0 to {NodeCount - 1}.");
        }
    }
}
