using System.Globalization;
using System.Net;
using System.Text.Json;
using CrossStoreSync.FaultProxy;

namespace CrossStoreSync.Peering.Tests.Harness;

/// <summary>
/// N real node processes on loopback; every node reaches every other through its own TCP fault proxy (node i → node j
/// through <c>Mesh.Proxy(i, j)</c>), so partitions, one-way loss, delay and resets apply per direction.
/// </summary>
public sealed class HarnessCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "css-peer-harness", Guid.NewGuid().ToString("N"));
    private readonly (string Private, string Public)[] _keys;
    private readonly int[] _ports;
    private readonly long[] _clockOffsets;
    private readonly NodeProcess?[] _nodes;

    public HarnessCluster(int count, long[]? clockOffsetsMs = null)
    {
        _keys = Enumerable.Range(0, count).Select(_ => PeerKeys.Generate()).ToArray();
        _ports = Enumerable.Range(0, count).Select(_ => TestCluster.FreePort()).ToArray();
        _clockOffsets = clockOffsetsMs ?? new long[count];
        _nodes = new NodeProcess?[count];
        Mesh = new FaultProxyMesh(_ports.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray());
    }

    public FaultProxyMesh Mesh { get; }

    public int Count => _nodes.Length;

    /// <summary>Node <paramref name="index"/> (0-based; its node id is index + 1).</summary>
    public NodeProcess this[int index] => _nodes[index] ?? throw new InvalidOperationException($"Node {index + 1} is not running.");

    public async Task StartAllAsync() => await Task.WhenAll(Enumerable.Range(0, Count).Select(i => StartAsync(i)));

    public async Task<NodeProcess> StartAsync(int index, params string[] extra)
    {
        // A port found free can be taken by another process before the node binds it (seeds run side by side): the
        // node then exits at once, before anything is written, and starts again on a new port its proxies forward to.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(index, extra);
            }
            catch (InvalidOperationException ex) when (attempt < 4 && ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                _ports[index] = TestCluster.FreePort();
                Mesh.Retarget(index, new IPEndPoint(IPAddress.Loopback, _ports[index]));
            }
        }
    }

    private async Task<NodeProcess> StartOnceAsync(int index, string[] extra)
    {
        var args = new List<string>
        {
            "--node", (index + 1).ToString(CultureInfo.InvariantCulture),
            "--dir", Path.Combine(_root, "node" + (index + 1).ToString(CultureInfo.InvariantCulture)),
            "--key", _keys[index].Private,
            "--listen", $"http://127.0.0.1:{_ports[index]}",
            "--clock-offset-ms", _clockOffsets[index].ToString(CultureInfo.InvariantCulture),
        };
        for (var j = 0; j < Count; j++)
        {
            if (j != index)
            {
                args.Add("--peer");
                args.Add($"{j + 1}=http://127.0.0.1:{Mesh.Proxy(index, j).Port}={_keys[j].Public}");
            }
        }

        args.AddRange(extra);
        var node = await NodeProcess.StartAsync(index + 1, args);
        _nodes[index] = node;
        return node;
    }

    /// <summary>Kills node <paramref name="index"/> with SIGKILL.</summary>
    public async Task KillAsync(int index)
    {
        if (_nodes[index] is { } node)
        {
            node.Kill();
            await node.DisposeAsync();
            _nodes[index] = null;
        }
    }

    /// <summary>Forgets a node that ended by itself (a crash plan).</summary>
    public async Task ReapAsync(int index)
    {
        if (_nodes[index] is { } node)
        {
            await node.WaitForExitAsync(TimeSpan.FromSeconds(120));
            await node.DisposeAsync();
            _nodes[index] = null;
        }
    }

    /// <summary>Every node pulls from every other until all Merkle roots agree (each pull is a real exchange, not a wait).</summary>
    public async Task<int> ConvergeAsync(int maxRounds = 6)
    {
        for (var round = 1; round <= maxRounds; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, Count).Select(i => this[i].SendAsync("syncall", TimeSpan.FromMinutes(3))));
            var roots = await Task.WhenAll(Enumerable.Range(0, Count).Select(i => this[i].SendAsync("root")));
            if (roots.Select(r => r.GetProperty("root").GetString()).Distinct().Count() == 1)
            {
                return round;
            }
        }

        var all = await Task.WhenAll(Enumerable.Range(0, Count).Select(i => this[i].SendAsync("root")));
        throw new Xunit.Sdk.XunitException($"The nodes did not converge in {maxRounds} rounds: {string.Join(", ", all.Select(r => r.GetRawText()))}");
    }

    public async Task<Dictionary<string, (long Version, string Hash, bool Deleted)>> DumpAsync(int index)
    {
        var answer = await this[index].SendAsync("dump");
        return answer.GetProperty("states").EnumerateArray().ToDictionary(
            s => s.GetProperty("Id").GetString()!,
            s => (s.GetProperty("Version").GetInt64(), s.GetProperty("Hash").GetString()!, s.GetProperty("Deleted").GetBoolean()));
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_nodes.Where(n => n is not null).Select(n => n!.DisposeAsync().AsTask()));
        await Mesh.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    public static string Describe(JsonElement element) => element.GetRawText();
}
