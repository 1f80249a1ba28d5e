using System.Runtime.CompilerServices;

namespace CrossStoreSync.Hashing;

/// <summary>
/// XXH64 (Yann Collet's 64-bit xxHash) as the library's hashes specify it (docs/architecture.md, Specifications):
/// one-shot over a span, allocation-free, little-endian, so the result is the same on every machine and may be
/// persisted. It is <see cref="System.IO.Hashing.XxHash64"/>; this type only keeps the library's unsigned-seed
/// signature, which stored hashes, checksums and buckets were computed with. Thread-safe.
/// </summary>
public static class XxHash64
{
    /// <summary>Hashes <paramref name="data"/> with <paramref name="seed"/>.</summary>
    /// <param name="data">The bytes to hash.</param>
    /// <param name="seed">The seed; XXH64 defines it as an unsigned 64-bit value, System.IO.Hashing takes the same bits as a signed one.</param>
    /// <returns>The 64-bit hash, equal to the reference library's <c>XXH64(data, length, seed)</c>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash(ReadOnlySpan<byte> data, ulong seed = 0) =>
        System.IO.Hashing.XxHash64.HashToUInt64(data, unchecked((long)seed));
}
