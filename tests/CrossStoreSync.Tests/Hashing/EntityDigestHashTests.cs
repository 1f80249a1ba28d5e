using System.Buffers.Binary;
using System.Numerics;
using CrossStoreSync.Hashing;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Hashing;

public sealed class EntityDigestHashTests
{
    private const int InputBits = EntityDigestHash.InputLength * 8;

    // Full 64-bit range, with the edge values every mixing function must survive mixed in.
    private static readonly Gen<ulong> WordGen = Gen.Frequency(
        (8, Gen.Choose(int.MinValue, int.MaxValue).Zip(Gen.Choose(int.MinValue, int.MaxValue), (hi, lo) => ((ulong)(uint)hi << 32) | (uint)lo)),
        (1, Gen.Elements(0UL, 1UL, ulong.MaxValue, 1UL << 63, 0x6A09E667F3BCC908UL)));

    private static readonly Gen<(ulong Key, long Version, UInt128 Content, UInt128 Projection)> InputGen =
        from key in WordGen
        from version in WordGen
        from contentHigh in WordGen
        from contentLow in WordGen
        from projectionHigh in WordGen
        from projectionLow in WordGen
        select (key, (long)(version >> 1), new UInt128(contentHigh, contentLow), new UInt128(projectionHigh, projectionLow));

    [Fact]
    public void Span_and_value_overloads_agree()
    {
        Prop.ForAll(Arb.From(InputGen), x =>
        {
            // Built by hand (not with WriteInput) so the documented byte layout itself is under test.
            Span<byte> bytes = stackalloc byte[48];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, x.Key);
            BinaryPrimitives.WriteInt64LittleEndian(bytes[8..], x.Version);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[16..], (ulong)x.Content);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[24..], (ulong)(x.Content >> 64));
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[32..], (ulong)x.Projection);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[40..], (ulong)(x.Projection >> 64));
            Span<byte> written = stackalloc byte[48];
            EntityDigestHash.WriteInput(written, x.Key, x.Version, x.Content, x.Projection);

            var fromValues = EntityDigestHash.Compute(x.Key, x.Version, x.Content, x.Projection);
            Assert.True(bytes.SequenceEqual(written));
            Assert.Equal(fromValues, EntityDigestHash.Compute(bytes));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Digest_matches_the_documented_specification()
    {
        Prop.ForAll(Arb.From(InputGen), x =>
        {
            var expected = Reference(x.Key, (ulong)x.Version, (ulong)x.Content, (ulong)(x.Content >> 64), (ulong)x.Projection, (ulong)(x.Projection >> 64));
            Assert.Equal(expected, EntityDigestHash.Compute(x.Key, x.Version, x.Content, x.Projection));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Digest_matches_the_pinned_test_vectors()
    {
        // Pinned values: a change here changes every stored tree and must be a deliberate format change.
        Assert.Equal(
            new UInt128(0x97C50FEE32865A9AUL, 0x33C9D359A1A19CBFUL),
            EntityDigestHash.Compute(0, 0, UInt128.Zero, UInt128.Zero));
        Assert.Equal(
            new UInt128(0xE84DAFD205FB58CEUL, 0xF2202317198F137BUL),
            EntityDigestHash.Compute(0x0123456789ABCDEFUL, 42, new UInt128(1, 2), new UInt128(3, 4)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(47)]
    [InlineData(49)]
    [InlineData(96)]
    public void Input_of_the_wrong_length_is_rejected_with_its_length(int length)
    {
        var ex = Assert.Throws<ArgumentException>(() => EntityDigestHash.Compute(new byte[length]));
        Assert.Equal("input", ex.ParamName);
        Assert.Contains($"got {length}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Flipping_any_input_bit_flips_about_half_of_the_output_bits()
    {
        const int Samples = 2000;
        var random = new Random(20_240_611);
        var input = new byte[EntityDigestHash.InputLength];
        var flippedTotal = new long[InputBits];

        // Strict avalanche: how often each output bit flips for each input bit.
        var outputBitFlips = new int[InputBits, 128];
        for (var s = 0; s < Samples; s++)
        {
            random.NextBytes(input);
            var original = EntityDigestHash.Compute(input);
            for (var bit = 0; bit < InputBits; bit++)
            {
                input[bit >> 3] ^= (byte)(1 << (bit & 7));
                var difference = original ^ EntityDigestHash.Compute(input);
                input[bit >> 3] ^= (byte)(1 << (bit & 7));

                var low = (ulong)difference;
                var high = (ulong)(difference >> 64);
                flippedTotal[bit] += BitOperations.PopCount(low) + BitOperations.PopCount(high);
                while (low != 0)
                {
                    outputBitFlips[bit, BitOperations.TrailingZeroCount(low)]++;
                    low &= low - 1;
                }

                while (high != 0)
                {
                    outputBitFlips[bit, 64 + BitOperations.TrailingZeroCount(high)]++;
                    high &= high - 1;
                }
            }
        }

        for (var bit = 0; bit < InputBits; bit++)
        {
            var average = flippedTotal[bit] / (double)Samples / 128;
            Assert.True(average is >= 0.40 and <= 0.60, $"Input bit {bit} flips {average:P1} of the output bits on average.");
            for (var outputBit = 0; outputBit < 128; outputBit++)
            {
                // With 2,000 samples a fair coin stays within 0.5 ± 0.07 (over 6 standard deviations).
                var rate = outputBitFlips[bit, outputBit] / (double)Samples;
                Assert.True(rate is >= 0.43 and <= 0.57, $"Input bit {bit} flips output bit {outputBit} in {rate:P1} of samples.");
            }
        }
    }

    [Fact]
    public void A_million_random_inputs_give_a_million_distinct_digests()
    {
        const int Count = 1_000_000;
        var inputs = new byte[Count * EntityDigestHash.InputLength];
        new Random(7).NextBytes(inputs);
        var digests = new UInt128[Count];
        for (var i = 0; i < Count; i++)
        {
            digests[i] = EntityDigestHash.Compute(inputs.AsSpan(i * EntityDigestHash.InputLength, EntityDigestHash.InputLength));
        }

        AssertDistinct(digests);
    }

    [Fact]
    public void A_million_inputs_that_differ_in_few_bits_give_a_million_distinct_digests()
    {
        // Low-entropy inputs: a counter in one field and everything else fixed, the case where weak mixing collides.
        const int PerField = 250_000;
        var digests = new UInt128[PerField * 4];
        var content = new UInt128(0xFEED, 0xBEEF);
        for (var i = 0; i < PerField; i++)
        {
            digests[i] = EntityDigestHash.Compute((ulong)i, 1, content, content);
            digests[PerField + i] = EntityDigestHash.Compute(ulong.MaxValue, i, content, content);
            digests[(2 * PerField) + i] = EntityDigestHash.Compute(ulong.MaxValue, 1, (UInt128)i << 64, content);
            digests[(3 * PerField) + i] = EntityDigestHash.Compute(ulong.MaxValue, 1, content, (UInt128)i);
        }

        AssertDistinct(digests);
    }

    private static void AssertDistinct(UInt128[] digests)
    {
        Array.Sort(digests);
        for (var i = 1; i < digests.Length; i++)
        {
            Assert.True(digests[i] != digests[i - 1], $"Digest {digests[i]:X} occurs twice.");
        }
    }

    // The specification of the remarks on EntityDigestHash, written independently with UInt128 arithmetic.
    private static UInt128 Reference(ulong w0, ulong w1, ulong w2, ulong w3, ulong w4, ulong w5)
    {
        ulong[] k =
        [
            0x6A09E667F3BCC908UL, 0xBB67AE8584CAA73BUL, 0x3C6EF372FE94F82BUL, 0xA54FF53A5F1D36F1UL,
            0x510E527FADE682D1UL, 0x9B05688C2B3E6C1FUL, 0x1F83D9ABFB41BD6BUL, 0x5BE0CD19137E2179UL,
            0xCBBB9D5DC1059ED8UL, 0x629A292A367CD507UL, 0x9159015A3070DD17UL, 0x152FECD8F70E5939UL,
        ];

        static ulong M(ulong x, ulong y)
        {
            var product = (UInt128)x * y;
            return (ulong)(product >> 64) ^ (ulong)product;
        }

        static ulong F(ulong z)
        {
            z ^= z >> 30;
            z *= 0xBF58476D1CE4E5B9UL;
            z ^= z >> 27;
            z *= 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        var a = unchecked(M(w0 ^ k[0], w1 ^ k[1]) + M(w2 ^ k[2], w3 ^ k[3]) + M(w4 ^ k[4], w5 ^ k[5]));
        var b = unchecked(M(w0 ^ k[6], w3 ^ k[7]) + M(w2 ^ k[8], w5 ^ k[9]) + M(w4 ^ k[10], w1 ^ k[11]));
        var u = unchecked(a + ((b << 32) | (b >> 32)));
        var v = b ^ ((u << 32) | (u >> 32));
        return new UInt128(F(v), F(u));
    }
}
