using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace CrossStoreSync.Hashing;

/// <summary>
/// The 128-bit digest of one entity's sync state — its key hash, version, content hash and projection hash — which
/// a Merkle tree leaf adds up (docs/consistency-hashing.md). Stable across processes and machines, allocation-free,
/// and not cryptographic: it detects accidental divergence, not an adversary.
/// </summary>
/// <remarks>
/// <para>
/// Input: six 64-bit words. <c>w0</c> = key hash, <c>w1</c> = version (the <see cref="long"/> reinterpreted as
/// unsigned), <c>w2</c>/<c>w3</c> = low/high 64 bits of the content hash, <c>w4</c>/<c>w5</c> = low/high 64 bits of the
/// projection hash. The canonical byte form (<see cref="InputLength"/> = 48 bytes) is the six words in that order,
/// each little-endian, so a <see cref="UInt128"/> is its 16 little-endian bytes.
/// </para>
/// <para>
/// Constants: <c>K0</c>..<c>K11</c> are the first 64 bits of the fractional parts of the square roots of the first
/// twelve primes (2, 3, 5, …, 37; <c>K0</c>..<c>K7</c> are SHA-512's initial hash values).
/// <c>M(x, y)</c> is the full 128-bit product of 64-bit unsigned <c>x</c> and <c>y</c>, folded to 64 bits by XOR-ing
/// its high half into its low half. All additions are modulo 2^64; <c>rotl</c> rotates left.
/// </para>
/// <code>
/// a = M(w0 ^ K0, w1 ^ K1)  + M(w2 ^ K2, w3 ^ K3)  + M(w4 ^ K4,  w5 ^ K5)
/// b = M(w0 ^ K6, w3 ^ K7)  + M(w2 ^ K8, w5 ^ K9)  + M(w4 ^ K10, w1 ^ K11)
/// u = a + rotl(b, 32)
/// v = b ^ rotl(u, 32)
/// F(z): z ^= z &gt;&gt; 30; z *= 0xBF58476D1CE4E5B9; z ^= z &gt;&gt; 27; z *= 0x94D049BB133111EB; z ^= z &gt;&gt; 31
/// digest = (upper: F(v), lower: F(u))
/// </code>
/// <para>
/// Why this shape: the six products are independent, so they run in parallel on the multiplier. Each word meets a
/// different partner in each lane, so a factor that happens to be zero in one lane cannot erase a word from the
/// digest. The step from <c>(a, b)</c> to <c>(u, v)</c> and the finaliser <c>F</c> (the SplitMix64 output function)
/// are both bijections, so they spread every bit of both lanes over both output halves without adding collisions.
/// </para>
/// </remarks>
public static class EntityDigestHash
{
    /// <summary>The length of the canonical input accepted by <see cref="Compute(ReadOnlySpan{byte})"/>.</summary>
    public const int InputLength = 48;

    private const ulong K0 = 0x6A09E667F3BCC908UL;
    private const ulong K1 = 0xBB67AE8584CAA73BUL;
    private const ulong K2 = 0x3C6EF372FE94F82BUL;
    private const ulong K3 = 0xA54FF53A5F1D36F1UL;
    private const ulong K4 = 0x510E527FADE682D1UL;
    private const ulong K5 = 0x9B05688C2B3E6C1FUL;
    private const ulong K6 = 0x1F83D9ABFB41BD6BUL;
    private const ulong K7 = 0x5BE0CD19137E2179UL;
    private const ulong K8 = 0xCBBB9D5DC1059ED8UL;
    private const ulong K9 = 0x629A292A367CD507UL;
    private const ulong K10 = 0x9159015A3070DD17UL;
    private const ulong K11 = 0x152FECD8F70E5939UL;

    /// <summary>Computes the digest of one entity's sync state.</summary>
    /// <param name="keyHash">The entity's <see cref="KeyHash"/>.</param>
    /// <param name="version">The recorded version (an <see cref="Model.HlcTimestamp"/> value).</param>
    /// <param name="contentHash">The recorded content hash.</param>
    /// <param name="projectionHash">The projection hash of what the store holds.</param>
    /// <returns>The 128-bit digest; equal to <see cref="Compute(ReadOnlySpan{byte})"/> over the canonical bytes.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static UInt128 Compute(ulong keyHash, long version, UInt128 contentHash, UInt128 projectionHash) =>
        Mix(keyHash, (ulong)version, (ulong)contentHash, (ulong)(contentHash >> 64), (ulong)projectionHash, (ulong)(projectionHash >> 64));

    /// <summary>Computes the digest from its canonical 48-byte form (see the remarks on <see cref="EntityDigestHash"/>).</summary>
    /// <param name="input">Exactly <see cref="InputLength"/> bytes.</param>
    /// <returns>The 128-bit digest.</returns>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not 48 bytes long.</exception>
    public static UInt128 Compute(ReadOnlySpan<byte> input)
    {
        if (input.Length != InputLength)
        {
            ThrowWrongLength(input.Length, nameof(input));
        }

        return Mix(
            BinaryPrimitives.ReadUInt64LittleEndian(input),
            BinaryPrimitives.ReadUInt64LittleEndian(input[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(input[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(input[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(input[32..]),
            BinaryPrimitives.ReadUInt64LittleEndian(input[40..]));
    }

    /// <summary>Writes the canonical 48-byte form of the inputs into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 48 bytes.</exception>
    public static void WriteInput(Span<byte> destination, ulong keyHash, long version, UInt128 contentHash, UInt128 projectionHash)
    {
        if (destination.Length < InputLength)
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes; the digest input needs {InputLength}.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, keyHash);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], version);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[16..], contentHash);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[32..], projectionHash);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static UInt128 Mix(ulong w0, ulong w1, ulong w2, ulong w3, ulong w4, ulong w5)
    {
        var a = Fold(w0 ^ K0, w1 ^ K1) + Fold(w2 ^ K2, w3 ^ K3) + Fold(w4 ^ K4, w5 ^ K5);
        var b = Fold(w0 ^ K6, w3 ^ K7) + Fold(w2 ^ K8, w5 ^ K9) + Fold(w4 ^ K10, w1 ^ K11);
        var u = a + BitOperations.RotateLeft(b, 32);
        var v = b ^ BitOperations.RotateLeft(u, 32);
        return new UInt128(Finish(v), Finish(u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Fold(ulong x, ulong y)
    {
        var high = Math.BigMul(x, y, out var low);
        return high ^ low;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Finish(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    [DoesNotReturn]
    private static void ThrowWrongLength(int length, string paramName) =>
        throw new ArgumentException($"The digest input must be exactly {InputLength} bytes; got {length}.", paramName);
}
