using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Benchmarks.Baselines;
using CrossStoreSync.Hashing;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// The library's 128-bit content hash (two seeded XXH64 passes, <see cref="Hash128"/>) before and after issue 14 moved
/// XXH64 onto System.IO.Hashing: baseline = the hand-written XXH64 the core carried until then
/// (<see cref="HandWrittenXxHash64"/>), measured against <see cref="Hash128.Hash"/> on the same inputs in the same
/// run. Lengths: a key (24 B), an entity digest input (48 B), a small document (1 KB) and a full entity encoding of
/// the benchmark shape (1 KB document, 384-float vector, 2 edges: about 2.7 KB).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class XxHash64Benchmarks
{
    private const int Inputs = 256;
    private byte[][] _inputs = [];

    [Params(24, 48, 1024, 2700)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(14);
        _inputs = new byte[Inputs][];
        for (var i = 0; i < Inputs; i++)
        {
            _inputs[i] = new byte[Length];
            random.NextBytes(_inputs[i]);

            // The baseline must compute the same function, or the comparison means nothing.
            if (HandWrittenXxHash64.Hash(_inputs[i]) != XxHash64.Hash(_inputs[i])
                || HandWrittenXxHash64.Hash(_inputs[i], Hash128.SecondSeed) != XxHash64.Hash(_inputs[i], Hash128.SecondSeed))
            {
                throw new InvalidOperationException($"The hand-written XXH64 and System.IO.Hashing disagree on input {i} of length {Length}.");
            }
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Inputs, Description = "before: hand-written XXH64 ×2 seeds")]
    public UInt128 HandWritten()
    {
        UInt128 acc = 0;
        foreach (var input in _inputs)
        {
            acc ^= new UInt128(HandWrittenXxHash64.Hash(input), HandWrittenXxHash64.Hash(input, Hash128.SecondSeed));
        }

        return acc;
    }

    [Benchmark(OperationsPerInvoke = Inputs, Description = "after: Hash128 on System.IO.Hashing.XxHash64")]
    public UInt128 SystemIoHashing()
    {
        UInt128 acc = 0;
        foreach (var input in _inputs)
        {
            acc ^= Hash128.Hash(input);
        }

        return acc;
    }
}
