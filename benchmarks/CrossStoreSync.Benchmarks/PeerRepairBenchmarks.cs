using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Cross-node repair (issue 12): two nodes hold the same 1,000,000 entities (1 KB document, 384-d vector, 2 edges);
/// before each iteration node 1 writes new versions of 1,000 of them (0.1% drift); node 2 compares sources by Merkle
/// trees over the protocol and pulls what differs. Baseline: a full transfer — a new, empty node 3 pulling everything
/// from node 1 over the same protocol. The bytes exchanged and round trips of each run are printed as
/// <c>REPAIR …</c> / <c>FULL …</c> lines (benchmarks/README.md). The two nodes are generated once and kept under
/// the temp folder between runs (CSS_BENCH_REPAIR_ENTITIES sets another size).
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class PeerRepairBenchmarks
{
    private const int Drift = 1000;
    private PeerNodes? _nodes;
    private PeerNodes.Node? _source;
    private PeerNodes.Node? _replica;
    private PeerNodes.Node? _fresh;
    private int _round;

    public static IEnumerable<int> Sizes() =>
        [int.TryParse(Environment.GetEnvironmentVariable("CSS_BENCH_REPAIR_ENTITIES"), CultureInfo.InvariantCulture, out var n) ? n : 1_000_000];

    [ParamsSource(nameof(Sizes))]
    public int Entities { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var root = Path.Combine(Path.GetTempPath(), "css-bench-repair-" + Entities.ToString(CultureInfo.InvariantCulture));
        var ready = Path.Combine(root, "ready");
        var nodes = new PeerNodes(3, root);
        if (!File.Exists(ready))
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }

            // Node 1 gets the entities through its engine; node 2 starts as a copy of its files.
            var first = nodes.Start(1, pull: false, replicas: false);
            for (var start = 0; start < Entities; start += 5000)
            {
                first.Manager.WriteBatchAsync(BenchmarkData.Range(start, Math.Min(5000, Entities - start), Entities).ToArray()).AsTask().GetAwaiter().GetResult();
            }

            nodes.StopAsync(first).GetAwaiter().GetResult();
            Directory.CreateDirectory(nodes.DirectoryOf(2));
            foreach (var file in Directory.GetFiles(nodes.DirectoryOf(1)))
            {
                File.Copy(file, Path.Combine(nodes.DirectoryOf(2), Path.GetFileName(file)));
            }

            File.WriteAllText(ready, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        }

        _nodes = nodes;
        _source = nodes.Start(1, pull: false, replicas: false);
        _replica = nodes.Start(2, pull: false, replicas: false);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        // Stops the nodes; the generated files stay for the next run (PeerNodes deletes only what it created here).
        foreach (var node in new[] { _fresh, _replica, _source })
        {
            if (node is not null)
            {
                await _nodes!.StopAsync(node);
            }
        }

        SqliteConnection.ClearAllPools();
    }

    /// <summary>A new, empty node 3 (its folder removed).</summary>
    [IterationSetup(Target = nameof(FullTransfer))]
    public void FreshNode()
    {
        if (_fresh is not null)
        {
            _nodes!.StopAsync(_fresh).GetAwaiter().GetResult();
        }

        if (Directory.Exists(_nodes!.DirectoryOf(3)))
        {
            Directory.Delete(_nodes.DirectoryOf(3), recursive: true);
        }

        _fresh = _nodes.Start(3, pull: false, replicas: false);
    }

    /// <summary>0.1% drift: node 1 writes new versions of 1,000 random entities.</summary>
    [IterationSetup(Target = nameof(MerkleRepair))]
    public void DriftOnSource()
    {
        var random = new Random(++_round);
        var picked = Enumerable.Range(0, Drift).Select(_ => random.Next(Entities)).Distinct().ToArray();
        var changed = picked.Select(i => BenchmarkData.Range(i, 1, Entities, seed: 1000 + _round).Single()).ToArray();
        _source!.Manager.WriteBatchAsync(changed).AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, Description = "full transfer: an empty node pulls everything")]
    public async Task<long> FullTransfer()
    {
        await _fresh!.Peering.SyncNowAsync(1);
        var status = _fresh.Peering.GetStatus().Single(s => s.NodeId == 1);
        Console.WriteLine(FormattableString.Invariant($"FULL entities={Entities} cursor={status.Cursor} states={status.StatesReceived} received={status.BytesReceived}"));
        return status.Cursor;
    }

    [Benchmark(Description = "Merkle repair of 0.1% drift")]
    public async Task<int> MerkleRepair()
    {
        var report = await _replica!.Peering.RepairAsync(1);
        var leaves = report.Collections.Sum(c => c.Leaves);
        var differing = report.Collections.Sum(c => c.DifferingLeaves);
        Console.WriteLine(FormattableString.Invariant(
            $"REPAIR entities={Entities} written={report.Written} received={report.BytesReceived} sent={report.BytesSent} roundtrips={report.RoundTrips} leaves={leaves} differing={differing} seconds={report.Duration.TotalSeconds:0.00}"));
        return report.Written;
    }
}
