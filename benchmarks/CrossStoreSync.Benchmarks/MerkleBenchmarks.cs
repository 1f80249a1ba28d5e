using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using CrossStoreSync.Consistency;

namespace CrossStoreSync.Benchmarks;

/// <summary>A build size: <see cref="Entries"/> random digests into a tree of <see cref="Depth"/>.</summary>
public sealed record MerkleCase(int Entries, int Depth)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Entries / 1_000_000}M@{Depth}");
}

/// <summary>
/// Building a Merkle tree from an unordered stream of digests: <c>Clear</c> + <c>AddRange</c> + <c>Root</c> on a
/// reused tree (a checker rebuilds the same tree on every pass), the same entries streamed in batches of 65,536
/// (which add in input order) and added one by one.
/// Targets: 1M digests at depth 16 in ≤ 20 ms, 10M at depth 20 in ≤ 150 ms; the "Tree B/entity" column is
/// <see cref="MerkleTree.MemoryBytes"/> / entries (target ≤ 4 B at 10M, depth 20).
/// Baseline: the obvious build — sum the digests per leaf in a <c>Dictionary&lt;int, UInt128&gt;</c>, copy the sums
/// into a leaf array, then sum pairs into a new array per level up to the root.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MerkleBuildConfig))]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 10, invocationCount: 1)]
public class MerkleBuildBenchmarks
{
    private const int StreamBatch = 65_536;
    private ulong[] _keys = [];
    private UInt128[] _digests = [];
    private MerkleTree? _tree;

    public static IEnumerable<MerkleCase> Cases => [new(1_000_000, 16), new(10_000_000, 20)];

    [ParamsSource(nameof(Cases))]
    public MerkleCase Case { get; set; } = new(1_000_000, 16);

    [GlobalSetup]
    public void Setup()
    {
        (_keys, _digests) = MerkleData.Random(Case.Entries, seed: 16);
        _tree = new MerkleTree(Case.Depth);
    }

    [Benchmark(Baseline = true, Description = "naive: Dictionary per leaf + array per level")]
    public UInt128 DictionaryBuild()
    {
        var depth = Case.Depth;
        var sums = new Dictionary<int, UInt128>();
        for (var i = 0; i < _keys.Length; i++)
        {
            var leaf = (int)(_keys[i] >> (64 - depth));
            sums[leaf] = sums.TryGetValue(leaf, out var sum) ? sum + _digests[i] : _digests[i];
        }

        var level = new UInt128[1 << depth];
        foreach (var (leaf, sum) in sums)
        {
            level[leaf] = sum;
        }

        while (level.Length > 1)
        {
            var parent = new UInt128[level.Length / 2];
            for (var i = 0; i < parent.Length; i++)
            {
                parent[i] = level[2 * i] + level[(2 * i) + 1];
            }

            level = parent;
        }

        return level[0];
    }

    [Benchmark(Description = "MerkleTree: Clear + AddRange + Root")]
    public UInt128 AddRangeBuild()
    {
        var tree = _tree!;
        tree.Clear();
        tree.AddRange(_keys, _digests);
        return tree.Root;
    }

    [Benchmark(Description = "MerkleTree: Clear + AddRange per 65,536 + Root")]
    public UInt128 AddRangeInBatchesBuild()
    {
        // A checker streaming a store page by page; batches this small always take AddRange's in-order path.
        var tree = _tree!;
        tree.Clear();
        for (var start = 0; start < _keys.Length; start += StreamBatch)
        {
            var count = Math.Min(StreamBatch, _keys.Length - start);
            tree.AddRange(_keys.AsSpan(start, count), _digests.AsSpan(start, count));
        }

        return tree.Root;
    }

    [Benchmark(Description = "MerkleTree: Clear + Add × N + Root")]
    public UInt128 AddOneByOneBuild()
    {
        var tree = _tree!;
        tree.Clear();
        var keys = _keys;
        var digests = _digests;
        for (var i = 0; i < keys.Length; i++)
        {
            tree.Add(keys[i], digests[i]);
        }

        return tree.Root;
    }

    private sealed class MerkleBuildConfig : ManualConfig
    {
        public MerkleBuildConfig() => AddColumn(new TreeBytesPerEntityColumn());
    }
}

/// <summary>
/// Comparing two depth-20 trees of 10M entries each that differ in 10,000 entries (0.1%, new digests at random
/// keys): <see cref="MerkleTree.Diff"/> descends only into differing subtrees. Target ≤ 5 ms.
/// Baseline: comparing all 2^20 leaves one by one with <see cref="MerkleTree.GetLeaf"/>.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class MerkleDiffBenchmarks
{
    private const int Entries = 10_000_000;
    private const int Changed = 10_000;
    private const int Depth = 20;
    private readonly List<int> _differing = new(2 * Changed);
    private readonly MerkleTree _left = new(Depth);
    private readonly MerkleTree _right = new(Depth);

    [GlobalSetup]
    public void Setup()
    {
        var (keys, digests) = MerkleData.Random(Entries, seed: 20);
        _left.AddRange(keys, digests);
        _right.AddRange(keys, digests);

        var random = new Random(21);
        var changed = new HashSet<int>();
        while (changed.Count < Changed)
        {
            changed.Add(random.Next(Entries));
        }

        foreach (var i in changed)
        {
            _right.Remove(keys[i], digests[i]);
            _right.Add(keys[i], new UInt128((ulong)random.NextInt64(), (ulong)random.NextInt64()));
        }

        // Both trees are fresh before measuring: the diff itself, not the bottom-up recomputation, is timed.
        _ = _left.Root;
        _ = _right.Root;
        if (Diff() != LinearCompare())
        {
            throw new InvalidOperationException("Diff and the linear comparison disagree.");
        }

        Console.WriteLine($"// {Changed} changed entries fall into {_differing.Count} differing leaves.");
    }

    [Benchmark(Baseline = true, Description = "linear: compare all 2^20 leaves")]
    public int LinearCompare()
    {
        _differing.Clear();
        var left = _left;
        var right = _right;
        for (var leaf = 0; leaf < left.LeafCount; leaf++)
        {
            if (left.GetLeaf(leaf) != right.GetLeaf(leaf))
            {
                _differing.Add(leaf);
            }
        }

        return _differing.Count;
    }

    [Benchmark(Description = "MerkleTree.Diff")]
    public int Diff() => MerkleTree.Diff(_left, _right, _differing);
}

internal static class MerkleData
{
    /// <summary>Uniformly random 64-bit key hashes and 128-bit digests.</summary>
    public static (ulong[] Keys, UInt128[] Digests) Random(int count, int seed)
    {
        var random = new Random(seed);
        var keys = new ulong[count];
        var digests = new UInt128[count];
        random.NextBytes(MemoryMarshal.AsBytes(keys.AsSpan()));
        random.NextBytes(MemoryMarshal.AsBytes(digests.AsSpan()));
        return (keys, digests);
    }
}

/// <summary>Tree memory per entity: <see cref="MerkleTree.MemoryBytes"/> of a tree of the case's depth / entries.</summary>
internal sealed class TreeBytesPerEntityColumn : IColumn
{
    public string Id => "TreeBytesPerEntity";

    public string ColumnName => "Tree B/entity";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "MerkleTree.MemoryBytes divided by the number of entries in the tree";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        if (benchmarkCase.Descriptor.Baseline || benchmarkCase.Parameters["Case"] is not MerkleCase c)
        {
            return "-";
        }

        var bytes = new MerkleTree(c.Depth).MemoryBytes;
        return (bytes / (double)c.Entries).ToString("0.00", CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
