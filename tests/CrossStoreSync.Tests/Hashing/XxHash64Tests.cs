using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using CrossStoreSync.Hashing;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Hashing;

public sealed class XxHash64Tests
{
    /// <summary>
    /// XXH64 of the first <c>length</c> bytes of <see cref="Pattern"/>, with seed 0 and with <see cref="Hash128.SecondSeed"/>,
    /// computed once by the reference C library (libxxhash 0.8.1, XXH64()) and pinned here. Lengths 0..100 walk every
    /// path: tail-only (&lt;32), one and several 32-byte stripes, and every 8/4/1-byte tail combination.
    /// </summary>
    private static readonly ulong[,] ReferenceVectors =
    {
        { 0, 0xEF46DB3751D8E999UL, 0xC4349FC93C010000UL },
        { 1, 0x1F25C8D0BC1F4BB6UL, 0x79826BCD749D267AUL },
        { 2, 0xF5BEDEC232706303UL, 0x416EC13888BE56BDUL },
        { 3, 0x31D2363F52E564C9UL, 0x78EFD77575E26575UL },
        { 4, 0x9BB64B7D66EE9FDAUL, 0x6F0A6C97D68BF353UL },
        { 5, 0xC7608EFDDB7051FEUL, 0xA677B535C22B67A5UL },
        { 6, 0x61436FB28D5CE4C4UL, 0x3DDB92210D49DF39UL },
        { 7, 0x9A7B149959CE60D8UL, 0xD97EDE93C9D66A0DUL },
        { 8, 0xDAB99D95C6F90092UL, 0xA2F1E28437A78A1BUL },
        { 9, 0x170BB6BF975B4C02UL, 0x9C9A3CD83532D84FUL },
        { 10, 0xBD7277D7E2D8A98CUL, 0xF42B7BC842CFFCB0UL },
        { 11, 0x7A52CC9457CF1A1FUL, 0x8D2B0D24762D2B6EUL },
        { 12, 0xD52E407833AF5133UL, 0xBCC9F0D616FF9A7BUL },
        { 13, 0xF78B031308F5BFC8UL, 0x8911D13E1DEE1A36UL },
        { 14, 0xC7F1D4D0ACFA5A14UL, 0x11C9CA8B8889A9F1UL },
        { 15, 0x1B47CB8243CC8E32UL, 0xE2EC50A544FAEC61UL },
        { 16, 0x434850232B787BE2UL, 0x93351859A7286376UL },
        { 17, 0x1EFA7025F1B97A7AUL, 0x81D900D244223ADCUL },
        { 18, 0x28791D24C4CF5E78UL, 0x01FD1C277C74B87CUL },
        { 19, 0x3E91F7C3171250D0UL, 0x5F052F09BE060EAFUL },
        { 20, 0x18AE385ADA6B00CBUL, 0xB97D6D957A8A5A1BUL },
        { 21, 0xC075185602AF71EBUL, 0x2B6AB9C27F2FE028UL },
        { 22, 0xB2CEB44AA258FF36UL, 0x04795981282C64F5UL },
        { 23, 0x36A34F92FB0205C0UL, 0x4E389069D2796FF0UL },
        { 24, 0xC47C71BD4694FF81UL, 0x64C7A387E2AED11BUL },
        { 25, 0xB13F23E884186902UL, 0xCB81C77F78174C2EUL },
        { 26, 0x76A5852D6E1CAB15UL, 0xED24BF77A34C3661UL },
        { 27, 0x9AB0B90755292FC8UL, 0x3B2695A1461F5FD5UL },
        { 28, 0x729299F92FF25C75UL, 0xF8F94A124ECCC104UL },
        { 29, 0x6CD01834BE7D2537UL, 0x9920B5763BEA3D1AUL },
        { 30, 0x4BDD83B2B139424FUL, 0x48EE8F401CCC2AADUL },
        { 31, 0xA2AA5F33CC4A6119UL, 0x755437271D1D0A84UL },
        { 32, 0x23C3C17EF790FD97UL, 0xBF624B932C090428UL },
        { 33, 0x50A7CFC7BA588784UL, 0x7ACEAF1E9D34EA35UL },
        { 34, 0xC3E49B08A6AAD624UL, 0x8A713C4C4D909A97UL },
        { 35, 0xA5B3456011D2913BUL, 0x5F3A81E47E467FE2UL },
        { 36, 0xC0B52B0DCC5E3F7FUL, 0xC2143DC58C007451UL },
        { 37, 0xE32EF63802F5A3FDUL, 0x75D0895F8692539FUL },
        { 38, 0xA4696F18F9ACCE05UL, 0x542D9FA3285F773FUL },
        { 39, 0x880BBEEA606E4B37UL, 0xA5164DCE04130FF3UL },
        { 40, 0xB620306B253D76B6UL, 0x3B3666E250C83A50UL },
        { 41, 0x8D56B39A38735FA8UL, 0x6E5BDEE563F95DDFUL },
        { 42, 0xD50FB183D9C4F252UL, 0x2A6D2D3BD998C346UL },
        { 43, 0x71784BDF7CC20CEEUL, 0xCBBC9850B9E944C2UL },
        { 44, 0xA4B19436AB40EDB0UL, 0x322AEF2A70D10C86UL },
        { 45, 0x86FAEE00897C4B41UL, 0x7AC01534587545F5UL },
        { 46, 0xD524C35B647262ACUL, 0xD4688BC906B1D5DDUL },
        { 47, 0xA7C5465CC5AD205EUL, 0x230880B9188BEE4BUL },
        { 48, 0xDA76BBB3544338EEUL, 0x0C8BBD122C2AC1CAUL },
        { 49, 0x756D92B5FF28E5BCUL, 0x1A050C03AFA053EFUL },
        { 50, 0x3FEB2F60DD4D0DBDUL, 0x0D4193D0152EF2F9UL },
        { 51, 0xF1639A50DBA4740BUL, 0x38B5839CE2CED15DUL },
        { 52, 0xE3BBA384BC67D6EEUL, 0x2FE1B7583FCF7B92UL },
        { 53, 0x84A096F591E6F04EUL, 0xDC4EF3415B5BE597UL },
        { 54, 0x6A7E7D3192910190UL, 0x5431B6965FDBBFBDUL },
        { 55, 0x0A815463DD86507AUL, 0x7D3E4BC95DA6E500UL },
        { 56, 0xED350C04E51A88E9UL, 0x075D6BAACE6DA5D3UL },
        { 57, 0xE1D288E4DE03CB88UL, 0xC50158B1C102A4CFUL },
        { 58, 0xF6E789B251EA5E64UL, 0xC22A1D166EDAA8E7UL },
        { 59, 0xC7A61C29CFAFE592UL, 0xB1F462BD34B8B8BBUL },
        { 60, 0x00F7F0730E736D93UL, 0x332C7D3723EA179FUL },
        { 61, 0xEA5D9295B669D981UL, 0x8EF660E5A8CD8B12UL },
        { 62, 0xF1A1A311AD02B5B1UL, 0xFC6C158AD8A30283UL },
        { 63, 0x5E3E54B431C7493CUL, 0x2C8DDCE5C85D0D9DUL },
        { 64, 0x0EB64B3EF6EEB01FUL, 0x4AF341F14E3A6FC9UL },
        { 65, 0xA383B724B2BD12F1UL, 0x8E9E580645400102UL },
        { 66, 0xB6D55F01384314C2UL, 0x0B5C637ECE07123EUL },
        { 67, 0x36C3014E8CF0EF72UL, 0x955F4A9135889BAFUL },
        { 68, 0x69569D3F713F823EUL, 0xC8AF7C89C0948A41UL },
        { 69, 0x57793F2C918C48A5UL, 0xB8EC9EE4C443E6EBUL },
        { 70, 0x9CC0BDC853243C07UL, 0x4836758FDB5692D7UL },
        { 71, 0xFDB8DFC5700141A7UL, 0xE52128ED16A7D82FUL },
        { 72, 0xFD91A561882D1FF7UL, 0x55FD6E3EC085BF7DUL },
        { 73, 0x8A834ABCF2F8B93CUL, 0x442FB0B79ECB5D83UL },
        { 74, 0xD340158F8CF0FB15UL, 0x03CD139FA82D08F4UL },
        { 75, 0xA0BD9A2DB08E831FUL, 0x36197CDF2C95E06DUL },
        { 76, 0x40AB8C3070928BCCUL, 0x0A5CE6467D943251UL },
        { 77, 0xC4E0603B2473C094UL, 0x65CE3F0F7282368FUL },
        { 78, 0xC64CB670798A0216UL, 0x7348C1CF84A3A8BCUL },
        { 79, 0x47689D5802EF60F9UL, 0xD702508201AEABBBUL },
        { 80, 0x1EFB52C793E16467UL, 0xA235A26C10FDDDF9UL },
        { 81, 0xCB446EEF618A5C5FUL, 0xCEED0AD8D982F5FFUL },
        { 82, 0xCF86163E2A57146DUL, 0x05B38A36D681A007UL },
        { 83, 0x5C682F0467158034UL, 0x07646CEAA7093082UL },
        { 84, 0xDABB597070523AA0UL, 0x92571C5392366AAFUL },
        { 85, 0xD57C286C39A9AA86UL, 0x41EF5376315A1062UL },
        { 86, 0xEC269DB55B82C1C5UL, 0x7CED547EDB669288UL },
        { 87, 0x453CE28B3E218742UL, 0xC197929757C1DDE7UL },
        { 88, 0xFA72FFDA01FF1D53UL, 0x11963D973DCF6887UL },
        { 89, 0x5334DA4F44541483UL, 0x3CC6810B34FF984CUL },
        { 90, 0xA88599170950FE6BUL, 0x46D0510E91022714UL },
        { 91, 0xE267317D04F769FDUL, 0x90F8ABE581975F10UL },
        { 92, 0x4972B6528838316BUL, 0xDF804967343B1E43UL },
        { 93, 0x440CA19B24B46393UL, 0xD9058261917FA26EUL },
        { 94, 0xD23F68BF6AF1ABC1UL, 0x9F46FE2E22678087UL },
        { 95, 0xF6FFB9103991895FUL, 0xEAF7AA1DBF255869UL },
        { 96, 0x3101A958DE582E18UL, 0x57517638F74EE9CCUL },
        { 97, 0xB2B3F9902EC2EFBDUL, 0x1BA43136B8A5517AUL },
        { 98, 0xEEE3136B2AF7FF5DUL, 0xC316638CB424B81DUL },
        { 99, 0x06A08EB098AFA2C3UL, 0xEB08E956B81DFACBUL },
        { 100, 0xA61F8D4C170FE531UL, 0xF6D8F65C625ABB4FUL },
    };

    private static byte[] Pattern(int length)
    {
        var data = new byte[length];
        for (var i = 0; i < length; i++)
        {
            data[i] = (byte)((i * 7) + 3);
        }

        return data;
    }

    [Fact]
    public void Empty_input_with_seed_zero_matches_the_published_vector()
    {
        Assert.Equal(0xEF46DB3751D8E999UL, XxHash64.Hash([]));
    }

    [Fact]
    public void Abc_matches_the_published_vector()
    {
        Assert.Equal(0x44BC2CF5AD770999UL, XxHash64.Hash("abc"u8));
    }

    [Fact]
    public void Every_length_from_0_to_100_matches_the_reference_library_for_both_seeds()
    {
        for (var length = 0; length <= 100; length++)
        {
            Assert.Equal(length, (int)ReferenceVectors[length, 0]);
            var data = Pattern(length);
            Assert.True(ReferenceVectors[length, 1] == XxHash64.Hash(data), $"seed 0, length {length}");
            Assert.True(ReferenceVectors[length, 2] == XxHash64.Hash(data, Hash128.SecondSeed), $"second seed, length {length}");
        }
    }

    [Fact]
    public void Hash128_is_the_two_seeded_xxh64_halves()
    {
        for (var length = 0; length <= 100; length += 11)
        {
            var expected = new UInt128(ReferenceVectors[length, 1], ReferenceVectors[length, 2]);
            Assert.Equal(expected, Hash128.Hash(Pattern(length)));
        }
    }

    [Fact]
    public void Hash_of_a_slice_equals_hash_of_a_copy_whatever_the_alignment()
    {
        var buffer = Pattern(200);
        for (var offset = 0; offset < 9; offset++)
        {
            for (var length = 0; length <= 100; length += 7)
            {
                var slice = buffer.AsSpan(offset, length);
                Assert.Equal(XxHash64.Hash(slice.ToArray(), 42), XxHash64.Hash(slice, 42));
            }
        }
    }

    [Fact]
    public void Random_inputs_and_seeds_match_an_independent_reference_implementation()
    {
        var inputs = Arb.From(
            Gen.Choose(0, 300).SelectMany(
                length => Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), length),
                (_, bytes) => bytes)
            .SelectMany(
                _ => Gen.Choose(int.MinValue, int.MaxValue).Two(),
                (bytes, seedParts) => (Bytes: bytes, Seed: ((ulong)(uint)seedParts.Item1 << 32) | (uint)seedParts.Item2)));

        Prop.ForAll(inputs, input =>
            Assert.Equal(ReferenceXxHash64(input.Bytes, input.Seed), XxHash64.Hash(input.Bytes, input.Seed)))
            .QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Flipping_any_single_input_bit_changes_about_half_of_the_output_bits()
    {
        var random = new Random(1234);
        foreach (var length in new[] { 1, 3, 8, 13, 31, 32, 33, 64, 100 })
        {
            var data = new byte[length];
            random.NextBytes(data);
            var original = XxHash64.Hash(data);
            long totalChanged = 0;
            for (var bit = 0; bit < length * 8; bit++)
            {
                data[bit / 8] ^= (byte)(1 << (bit % 8));
                var changed = BitOperations.PopCount(original ^ XxHash64.Hash(data));
                data[bit / 8] ^= (byte)(1 << (bit % 8));
                Assert.True(changed >= 8, $"Flipping bit {bit} of a {length}-byte input changed only {changed} output bits.");
                totalChanged += changed;
            }

            var mean = (double)totalChanged / (length * 8);
            Assert.InRange(mean, 28.0, 36.0);
        }
    }

    [Fact]
    public void Same_input_hashes_the_same_on_every_call()
    {
        var text = Encoding.UTF8.GetBytes(new string('x', 1000) + "ключ");
        var first = XxHash64.Hash(text, 7);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(first, XxHash64.Hash(text.ToArray(), 7));
        }
    }

    /// <summary>
    /// XXH64 written from the published specification (xxhash.com, doc/xxhash_spec.md) with explicit indices and
    /// little-endian reads assembled byte by byte, independently of System.IO.Hashing, which the library uses.
    /// </summary>
    private static ulong ReferenceXxHash64(byte[] input, ulong seed)
    {
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL, P3 = 0x165667B19E3779F9UL, P4 = 0x85EBCA77C2B2AE63UL, P5 = 0x27D4EB2F165667C5UL;
        static ulong Read64(byte[] b, int i)
        {
            ulong v = 0;
            for (var k = 7; k >= 0; k--)
            {
                v = (v << 8) | b[i + k];
            }

            return v;
        }

        static ulong Round(ulong acc, ulong lane) => BitOperations.RotateLeft(acc + (lane * P2), 31) * P1;

        var length = input.Length;
        var offset = 0;
        ulong acc;
        if (length >= 32)
        {
            ulong a1 = seed + P1 + P2, a2 = seed + P2, a3 = seed, a4 = seed - P1;
            var stripes = length / 32;
            for (var s = 0; s < stripes; s++, offset += 32)
            {
                a1 = Round(a1, Read64(input, offset));
                a2 = Round(a2, Read64(input, offset + 8));
                a3 = Round(a3, Read64(input, offset + 16));
                a4 = Round(a4, Read64(input, offset + 24));
            }

            acc = BitOperations.RotateLeft(a1, 1) + BitOperations.RotateLeft(a2, 7) + BitOperations.RotateLeft(a3, 12) + BitOperations.RotateLeft(a4, 18);
            foreach (var a in new[] { a1, a2, a3, a4 })
            {
                acc ^= Round(0, a);
                acc = (acc * P1) + P4;
            }
        }
        else
        {
            acc = seed + P5;
        }

        acc += (ulong)length;
        for (; offset + 8 <= length; offset += 8)
        {
            acc ^= Round(0, Read64(input, offset));
            acc = (BitOperations.RotateLeft(acc, 27) * P1) + P4;
        }

        if (offset + 4 <= length)
        {
            acc ^= BinaryPrimitives.ReadUInt32LittleEndian(input.AsSpan(offset, 4)) * P1;
            acc = (BitOperations.RotateLeft(acc, 23) * P2) + P3;
            offset += 4;
        }

        for (; offset < length; offset++)
        {
            acc ^= input[offset] * P5;
            acc = BitOperations.RotateLeft(acc, 11) * P1;
        }

        acc ^= acc >> 33;
        acc *= P2;
        acc ^= acc >> 29;
        acc *= P3;
        acc ^= acc >> 32;
        return acc;
    }
}
