using System.Globalization;
using CrossStoreSync.Consistency;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;

namespace CrossStoreSync.Tests.Consistency;

public sealed class BlockedBloomFilterTests(ITestOutputHelper output)
{
    private const int ProbeCount = 2_000_000;

    [Fact]
    public void Added_keys_are_always_reported_present()
    {
        // Seeded well-mixed hashes cover realistic input; FsCheck's raw ulongs add small and clustered values
        // (all in block 0, many sharing bits) that stress the same invariant.
        var cases = Arb.From(
            from log2 in Gen.Choose(0, 12)
            from count in Gen.Choose(0, 20_000)
            from seed in Gen.Choose(int.MinValue, int.MaxValue)
            from raw in Gen.ArrayOf(ArbMap.Default.GeneratorFor<ulong>())
            select (Log2: log2, Count: count, Seed: seed, Raw: raw));

        Prop.ForAll(cases, c =>
        {
            var filter = new BlockedBloomFilter(c.Log2);
            var keys = new ulong[c.Count + c.Raw.Length];
            for (var i = 0; i < c.Count; i++)
            {
                keys[i] = Mix(((ulong)(uint)c.Seed << 32) + (ulong)i);
            }

            c.Raw.CopyTo(keys, c.Count);
            foreach (var key in keys)
            {
                filter.Add(key);
            }

            foreach (var key in keys)
            {
                Assert.True(filter.MayContain(key));
                Assert.True(filter.MayContainScalar(key));
            }

            Assert.Equal(keys.Length, filter.Count);
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(8.0, 1.0)]
    [InlineData(10.6, 0.01)]
    [InlineData(16.0, 1.0)]
    public void Measured_false_positive_rate_matches_the_model(double bitsPerKey, double maxRate)
    {
        var filter = new BlockedBloomFilter(16);
        var keys = (long)(filter.BlockCount * BlockedBloomFilter.BitsPerBlock / bitsPerKey);
        for (var i = 0L; i < keys; i++)
        {
            filter.Add(Mix((ulong)i));
        }

        // Mix is a bijection, so probes drawn past the added range were never added.
        var falsePositives = 0;
        for (var i = 0L; i < ProbeCount; i++)
        {
            falsePositives += filter.MayContain(Mix((ulong)(keys + i))) ? 1 : 0;
        }

        var measured = (double)falsePositives / ProbeCount;
        var modelled = BlockedBloomFilter.EstimateFalsePositiveRate(bitsPerKey);
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"bits/key {bitsPerKey}: {keys} keys in {filter.BlockCount} blocks, {falsePositives} false positives in {ProbeCount} probes, measured FPR {measured:P4}, model {modelled:P4}, ratio {measured / modelled:F3}"));

        Assert.InRange(measured, modelled / 1.5, modelled * 1.5);
        Assert.InRange(measured, 0, maxRate);
    }

    [Fact]
    public void Vector_and_scalar_paths_set_the_same_bits_and_give_the_same_answers()
    {
        output.WriteLine($"256-bit path available: {BlockedBloomFilter.IsVectorized}");
        var vector = new BlockedBloomFilter(10);
        var scalar = new BlockedBloomFilter(10);
        var random = new Random(42);
        for (var i = 0; i < 40_000; i++)
        {
            var hash = RandomHash(random);
            if (BlockedBloomFilter.IsVectorized)
            {
                vector.AddVector(hash);
            }
            else
            {
                vector.Add(hash);
            }

            scalar.AddScalar(hash);
        }

        Assert.Equal(scalar.CopyBits(), vector.CopyBits());

        var positives = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var hash = RandomHash(random);
            var answer = vector.MayContainScalar(hash);
            Assert.Equal(answer, vector.MayContain(hash));
            if (BlockedBloomFilter.IsVectorized)
            {
                Assert.Equal(answer, vector.MayContainVector(hash));
            }

            positives += answer ? 1 : 0;
        }

        // The filter is over-full (about 6.5 bits/key), so both answers occur and the comparison covers both.
        Assert.InRange(positives, 1, 199_999);
    }

    [Fact]
    public void Batch_add_and_lookup_match_one_key_at_a_time()
    {
        var hashes = new ulong[5_000];
        for (var i = 0; i < hashes.Length; i++)
        {
            hashes[i] = Mix((ulong)i);
        }

        var single = new BlockedBloomFilter(7);
        foreach (var hash in hashes)
        {
            single.Add(hash);
        }

        var batched = new BlockedBloomFilter(7);
        batched.AddRange(hashes);
        batched.AddRange([]);

        Assert.Equal(single.CopyBits(), batched.CopyBits());
        Assert.Equal(hashes.Length, batched.Count);

        var probes = new ulong[20_000];
        for (var i = 0; i < probes.Length; i++)
        {
            probes[i] = Mix((ulong)(i + 2_500)); // the first 2,500 were added
        }

        var results = new bool[probes.Length + 1];
        results[^1] = true;
        var positives = batched.MayContain(probes, results);

        var expectedPositives = 0;
        for (var i = 0; i < probes.Length; i++)
        {
            Assert.Equal(single.MayContain(probes[i]), results[i]);
            expectedPositives += results[i] ? 1 : 0;
        }

        Assert.Equal(expectedPositives, positives);
        Assert.InRange(positives, 2_500, probes.Length - 1);
        Assert.True(results[^1]); // entries past the hashes are left alone
    }

    [Fact]
    public void Batch_lookup_rejects_a_results_span_shorter_than_the_hashes()
    {
        var filter = new BlockedBloomFilter(0);

        var error = Assert.Throws<ArgumentException>(() => filter.MayContain(new ulong[3], new bool[2]));

        Assert.Equal("results", error.ParamName);
        Assert.Contains("2", error.Message, StringComparison.Ordinal);
        Assert.Contains("3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_add_sets_one_bit_in_each_of_the_eight_words_of_one_block()
    {
        var filter = new BlockedBloomFilter(4);
        const ulong Hash = 0x0000_0005_DEAD_BEEFUL; // upper half 5 → block 5
        filter.Add(Hash);

        var words = MemoryMarshalWords(filter.CopyBits());
        for (var w = 0; w < words.Length; w++)
        {
            var expectedBits = w / 8 == 5 ? 1 : 0;
            Assert.Equal(expectedBits, System.Numerics.BitOperations.PopCount(words[w]));
        }
    }

    [Theory]
    [InlineData(1L, 10.6, 1L)]
    [InlineData(24L, 10.6, 1L)] // 254.4 bits
    [InlineData(25L, 10.6, 2L)] // 265 bits
    [InlineData(32L, 8.0, 1L)] // exactly 256 bits
    [InlineData(33L, 8.0, 2L)]
    [InlineData(1_000_000L, 10.6, 65_536L)] // 10.6e6 bits → 41,407 blocks → 2^16
    [InlineData(100_000_000L, 10.6, 4_194_304L)] // 1.06e9 bits ≤ 2^22 × 256
    public void Create_picks_the_smallest_power_of_two_block_count_that_holds_the_bits(long keys, double bitsPerKey, long expectedBlocks)
    {
        var filter = BlockedBloomFilter.Create(keys, bitsPerKey);

        Assert.Equal(expectedBlocks, filter.BlockCount);
        Assert.Equal(expectedBlocks * 32, filter.SizeInBytes);
        Assert.Equal(0, filter.Count);
        Assert.True(filter.BlockCount * 256 >= keys * bitsPerKey);
        Assert.True(filter.BlockCount == 1 || filter.BlockCount * 128 < keys * bitsPerKey);
    }

    [Fact]
    public void Create_defaults_to_10_6_bits_per_key()
    {
        Assert.Equal(4, BlockedBloomFilter.Create(90).BlockCount); // 954 bits → 4 blocks
        Assert.Equal(8, BlockedBloomFilter.Create(97).BlockCount); // 1028.2 bits → 8 blocks
    }

    [Theory]
    [InlineData(0L, 10.6, "expectedKeys", "0")]
    [InlineData(-5L, 10.6, "expectedKeys", "-5")]
    [InlineData(10L, 0.5, "bitsPerKey", "0.5")]
    [InlineData(10L, 64.5, "bitsPerKey", "64.5")]
    [InlineData(10L, double.NaN, "bitsPerKey", "NaN")]
    [InlineData(1L << 31, 9.0, "expectedKeys", "2147483648")] // 1.9e10 bits > 2^34
    public void Create_rejects_bad_arguments_naming_parameter_and_value(long keys, double bitsPerKey, string parameter, string value)
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        try
        {
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => BlockedBloomFilter.Create(keys, bitsPerKey));

            Assert.Equal(parameter, error.ParamName);
            Assert.Contains(parameter, error.Message, StringComparison.Ordinal);
            Assert.Contains(value, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    [Fact]
    public void Create_rejects_a_filter_over_2_pow_34_bits()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BlockedBloomFilter.Create((1L << 28) + 1, 64));
        Assert.Contains("2^34", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(29)]
    public void Constructor_rejects_block_count_exponents_outside_0_to_28(int log2BlockCount)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new BlockedBloomFilter(log2BlockCount));

        Assert.Equal("log2BlockCount", error.ParamName);
        Assert.Contains(log2BlockCount.ToString(CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Estimate_rejects_bits_per_key_outside_1_to_64_and_falls_as_bits_grow()
    {
        Assert.Equal("bitsPerKey", Assert.Throws<ArgumentOutOfRangeException>(() => BlockedBloomFilter.EstimateFalsePositiveRate(0)).ParamName);
        Assert.Equal("bitsPerKey", Assert.Throws<ArgumentOutOfRangeException>(() => BlockedBloomFilter.EstimateFalsePositiveRate(65)).ParamName);

        var previous = 1.0;
        for (var bits = 1.0; bits <= 64; bits += 0.5)
        {
            var rate = BlockedBloomFilter.EstimateFalsePositiveRate(bits);
            Assert.InRange(rate, 0, previous);
            previous = rate;
        }

        Assert.InRange(BlockedBloomFilter.EstimateFalsePositiveRate(10.6), 0.009, 0.01);
    }

    [Fact]
    public void Clear_forgets_every_key_and_resets_the_count()
    {
        var filter = new BlockedBloomFilter(6);
        for (var i = 0UL; i < 1_000; i++)
        {
            filter.Add(Mix(i));
        }

        Assert.Equal(1_000, filter.Count);
        filter.Clear();

        Assert.Equal(0, filter.Count);
        Assert.All(filter.CopyBits(), bits => Assert.Equal(0UL, bits));
        for (var i = 0UL; i < 1_000; i++)
        {
            Assert.False(filter.MayContain(Mix(i)));
        }

        filter.Add(Mix(7));
        Assert.True(filter.MayContain(Mix(7)));
        Assert.Equal(1, filter.Count);
    }

    [Fact]
    public void Blocks_are_cache_line_aligned_so_every_operation_touches_one_line()
    {
        for (var log2 = 0; log2 < 8; log2++)
        {
            var filter = new BlockedBloomFilter(log2);
            Assert.Equal(0UL, (ulong)filter.FirstBlockAddress % 64);
        }
    }

    private static ulong RandomHash(Random random) => (ulong)random.NextInt64() ^ ((ulong)random.Next(2) << 63);

    private static uint[] MemoryMarshalWords(ulong[] bits) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, uint>(bits).ToArray();

    // SplitMix64's finalizer: a bijection on 64-bit values, so distinct inputs give distinct, well-mixed hashes.
    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
