namespace CrossStoreSync.Hashing;

/// <summary>
/// The library's 128-bit hash: XXH64 with seed 0 in the high half and XXH64 with seed <see cref="SecondSeed"/> in the
/// low half. Stable across processes and machines.
/// </summary>
public static class Hash128
{
    /// <summary>The seed of the low half (the 64-bit golden ratio).</summary>
    public const ulong SecondSeed = 0x9E3779B97F4A7C15UL;

    /// <summary>Hashes <paramref name="data"/>.</summary>
    public static UInt128 Hash(ReadOnlySpan<byte> data) => new(XxHash64.Hash(data), XxHash64.Hash(data, SecondSeed));
}
