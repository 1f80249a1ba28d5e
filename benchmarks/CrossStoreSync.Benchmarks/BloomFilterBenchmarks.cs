using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Consistency;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// <see cref="BlockedBloomFilter"/> add and lookup, per key, for a filter sized by <c>Create(Keys)</c> (10.6 bits/key,
/// rounded up to a power of two: 2 MiB for 1M keys, 128 MiB for 100M) and filled with <c>Keys</c> keys.
/// Probes are 2^20 precomputed hashes, half of them added keys and half never added, passed one call per key
/// (<c>Add</c>, <c>MayContain</c>) or as one span (<c>AddRange</c>, batch <c>MayContain</c>).
/// Baselines touch one random cache line per probe in a <c>long[]</c> of the filter's byte size, with the line picked
/// by the same hash bits the filter uses to pick a block: a read for lookups, a read-modify-write for adds. Both
/// filter operations touch exactly one cache line, so these are the memory system's floor and the ratio is the cost
/// of the filter's own work (hashing eight salts, building and testing the mask).
/// Median and minimum columns are shown because the benchmark machine is shared: the minimum is the least disturbed
/// iteration.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 10)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
[MedianColumn]
[MinColumn]
public class BloomFilterBenchmarks
{
    private const int Probes = 1 << 20;
    private const int LongsPerCacheLine = 64 / sizeof(long);

    private BlockedBloomFilter _filter = null!;
    private long[] _lines = [];
    private ulong _lineMask;
    private ulong[] _probes = [];
    private bool[] _results = [];

    [Params(1_000_000, 100_000_000)]
    public int Keys { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _filter = BlockedBloomFilter.Create(Keys);
        for (var i = 0UL; i < (ulong)Keys; i++)
        {
            _filter.Add(Mix(i));
        }

        // Written, not just allocated, so every page is mapped before timing (as the filled filter's are).
        _lines = new long[_filter.SizeInBytes / sizeof(long)];
        for (var i = 0; i < _lines.Length; i++)
        {
            _lines[i] = i;
        }

        _lineMask = (ulong)(_lines.Length / LongsPerCacheLine) - 1;

        var random = new Random(17);
        _results = new bool[Probes];
        _probes = new ulong[Probes];
        for (var i = 0; i < Probes; i++)
        {
            _probes[i] = i % 2 == 0 ? Mix((ulong)random.NextInt64(Keys)) : Mix((ulong)Keys + (ulong)i);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Probes, Description = "contains baseline: read 1 random cache line")]
    [BenchmarkCategory("Contains")]
    public long ReadRandomCacheLine()
    {
        ref var lines = ref MemoryMarshal.GetArrayDataReference(_lines);
        var mask = _lineMask;
        var sum = 0L;
        foreach (var hash in _probes)
        {
            sum += Unsafe.Add(ref lines, (nint)((((hash >> 32) & mask)) * LongsPerCacheLine));
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Probes, Description = "Bloom MayContain")]
    [BenchmarkCategory("Contains")]
    public long MayContain()
    {
        var filter = _filter;
        var hits = 0L;
        foreach (var hash in _probes)
        {
            hits += filter.MayContain(hash) ? 1 : 0;
        }

        return hits;
    }

    [Benchmark(OperationsPerInvoke = Probes, Description = "Bloom MayContain, batch of 2^20")]
    [BenchmarkCategory("Contains")]
    public long MayContainBatch() => _filter.MayContain(_probes, _results);

    [Benchmark(Baseline = true, OperationsPerInvoke = Probes, Description = "add baseline: read-modify-write 1 random cache line")]
    [BenchmarkCategory("Add")]
    public long WriteRandomCacheLine()
    {
        ref var lines = ref MemoryMarshal.GetArrayDataReference(_lines);
        var mask = _lineMask;
        foreach (var hash in _probes)
        {
            Unsafe.Add(ref lines, (nint)(((hash >> 32) & mask) * LongsPerCacheLine)) |= (long)hash;
        }

        return _lines[0];
    }

    [Benchmark(OperationsPerInvoke = Probes, Description = "Bloom Add")]
    [BenchmarkCategory("Add")]
    public long Add()
    {
        var filter = _filter;
        foreach (var hash in _probes)
        {
            filter.Add(hash);
        }

        return filter.Count;
    }

    [Benchmark(OperationsPerInvoke = Probes, Description = "Bloom AddRange, batch of 2^20")]
    [BenchmarkCategory("Add")]
    public long AddRange()
    {
        _filter.AddRange(_probes);
        return _filter.Count;
    }

    // SplitMix64's finalizer: a bijection, so keys Mix(0..Keys-1) and Mix(Keys..) never collide.
    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
