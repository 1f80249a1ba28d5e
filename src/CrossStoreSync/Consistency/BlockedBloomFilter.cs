using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrossStoreSync.Consistency;

/// <summary>
/// A split-block Bloom filter (the layout of Apache Parquet's and Impala's filters): a power-of-two number of
/// 256-bit blocks, each the size of half a cache line. A key sets one bit in each of the eight 32-bit words of one
/// block, so an add or a lookup touches exactly one cache line.
/// </summary>
/// <remarks>
/// <para>
/// The block is picked by masking the upper 32 bits of the hash; the bit in word <c>i</c> is the top 5 bits of
/// <c>(uint)hash * salt[i]</c>, with the eight odd salts of the Parquet specification. Hashes must therefore be
/// well mixed in both halves (digest bits or XXH64 output are; raw counters are not).
/// </para>
/// <para>
/// The filter lives in memory only; its bit layout is not a persisted or cross-process format.
/// </para>
/// <para>
/// Thread safety: not thread-safe for writes. <see cref="Add(ulong)"/>, <see cref="AddRange"/> and <see cref="Clear"/>
/// must not run concurrently with any other member. Concurrent <c>MayContain</c> calls are safe while no write runs.
/// </para>
/// </remarks>
public sealed class BlockedBloomFilter
{
    /// <summary>The number of bits in one block.</summary>
    public const int BitsPerBlock = 256;

    /// <summary>The largest <c>log2BlockCount</c> the constructor accepts (2^28 blocks, 8 GiB).</summary>
    public const int MaxLog2BlockCount = 28;

    /// <summary>The largest filter, in bits, that <see cref="Create"/> sizes (2^34 bits, 2 GiB).</summary>
    public const long MaxCreateBits = 1L << 34;

    private const int BytesPerBlock = BitsPerBlock / 8;
    private const int UInt64sPerBlock = BytesPerBlock / sizeof(ulong);
    private const int WordsPerBlock = BytesPerBlock / sizeof(uint);

    // Blocks start on a cache-line boundary so no block straddles two lines; the storage array carries one spare
    // cache line to make room for the shift.
    private const int CacheLineBytes = 64;
    private const int PaddingUInt64s = CacheLineBytes / sizeof(ulong);

    // Top 5 bits of a 32-bit product pick one of a word's 32 bits.
    private const int BitIndexShift = 32 - 5;

    private readonly ulong[] _storage;
    private readonly nuint _firstBlock;
    private readonly uint _blockMask;
    private long _count;

    /// <summary>Creates an empty filter of <c>2^<paramref name="log2BlockCount"/></c> blocks of 256 bits.</summary>
    /// <param name="log2BlockCount">The base-2 logarithm of the block count, 0 to <see cref="MaxLog2BlockCount"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="log2BlockCount"/> is negative or above <see cref="MaxLog2BlockCount"/>.</exception>
    /// <exception cref="OutOfMemoryException">The storage cannot be allocated.</exception>
    public BlockedBloomFilter(int log2BlockCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(log2BlockCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(log2BlockCount, MaxLog2BlockCount);

        BlockCount = 1L << log2BlockCount;
        _blockMask = (uint)(BlockCount - 1);

        // Pinned, so the alignment computed here stays valid for the filter's lifetime.
        _storage = GC.AllocateArray<ulong>(checked((int)((BlockCount * UInt64sPerBlock) + PaddingUInt64s)), pinned: true);
        var address = (nuint)Marshal.UnsafeAddrOfPinnedArrayElement(_storage, 0);
        var misalignment = address & (CacheLineBytes - 1);
        _firstBlock = misalignment == 0 ? 0 : (CacheLineBytes - misalignment) / sizeof(ulong);
    }

    /// <summary>The number of 256-bit blocks, a power of two.</summary>
    public long BlockCount { get; }

    /// <summary>The size of the bit array in bytes (<see cref="BlockCount"/> × 32), excluding one cache line of alignment padding.</summary>
    public long SizeInBytes => BlockCount * BytesPerBlock;

    /// <summary>The number of keys added (by <see cref="Add(ulong)"/> or <see cref="AddRange"/>) since creation or the last <see cref="Clear"/>, duplicates included.</summary>
    public long Count => _count;

    /// <summary>Whether adds and lookups use 256-bit vector instructions (AVX2) on this machine.</summary>
    internal static bool IsVectorized => Vector256.IsHardwareAccelerated && Avx2.IsSupported;

    /// <summary>
    /// Creates an empty filter sized for <paramref name="expectedKeys"/> at <paramref name="bitsPerKey"/>: the block
    /// count is the smallest power of two with <c>blockCount × 256 ≥ expectedKeys × bitsPerKey</c> (at least one
    /// block), so the filter holds at least the requested bits per key.
    /// </summary>
    /// <param name="expectedKeys">The number of keys that will be added; at least 1.</param>
    /// <param name="bitsPerKey">Bits of filter per expected key, 1 to 64. The default, 10.6, gives a false-positive rate just under 1% (see <see cref="EstimateFalsePositiveRate"/>).</param>
    /// <returns>An empty filter.</returns>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="expectedKeys"/> is below 1, <paramref name="bitsPerKey"/> is outside [1, 64] or not a number,
    /// or <c>expectedKeys × bitsPerKey</c> exceeds <see cref="MaxCreateBits"/>.
    /// </exception>
    /// <exception cref="OutOfMemoryException">The storage cannot be allocated.</exception>
    public static BlockedBloomFilter Create(long expectedKeys, double bitsPerKey = 10.6)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedKeys, 1);
        ValidateBitsPerKey(bitsPerKey);

        var bits = expectedKeys * bitsPerKey;
        if (bits > MaxCreateBits)
        {
            throw new ArgumentOutOfRangeException(
                nameof(expectedKeys),
                expectedKeys,
                $"{nameof(expectedKeys)} ({expectedKeys}) × {nameof(bitsPerKey)} ({bitsPerKey}) is {bits} bits, over the limit of 2^34 bits.");
        }

        var log2BlockCount = 0;
        while ((double)(BitsPerBlock * (1L << log2BlockCount)) < bits)
        {
            log2BlockCount++;
        }

        return new BlockedBloomFilter(log2BlockCount);
    }

    /// <summary>
    /// The modelled false-positive rate of this filter when it holds one key per <paramref name="bitsPerKey"/> bits:
    /// the number of keys per block is Poisson with mean <c>256 / bitsPerKey</c>, and a block holding <c>j</c> keys
    /// answers a foreign key positively with probability <c>(1 − (31/32)^j)^8</c>.
    /// </summary>
    /// <param name="bitsPerKey">Bits of filter per added key, 1 to 64.</param>
    /// <returns>The expected fraction of keys never added for which <see cref="MayContain(ulong)"/> returns <see langword="true"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bitsPerKey"/> is outside [1, 64] or not a number.</exception>
    public static double EstimateFalsePositiveRate(double bitsPerKey)
    {
        ValidateBitsPerKey(bitsPerKey);

        var keysPerBlock = BitsPerBlock / bitsPerKey;

        // Summing to mean + 12 standard deviations leaves a Poisson tail far below double precision of the result.
        var last = (int)Math.Ceiling(keysPerBlock + (12 * Math.Sqrt(keysPerBlock)) + 16);
        var probability = Math.Exp(-keysPerBlock);
        var rate = 0.0;
        for (var j = 1; j <= last; j++)
        {
            probability *= keysPerBlock / j;
            var wordHit = 1 - Math.Pow(1 - (1.0 / 32), j);
            rate += probability * Math.Pow(wordHit, WordsPerBlock);
        }

        return rate;
    }

    /// <summary>Adds a key given as its 64-bit hash. Allocation-free.</summary>
    /// <param name="hash">A well-mixed 64-bit hash of the key (for example, 64 bits of its digest).</param>
    /// <remarks>Not thread-safe: no other member may run concurrently.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(ulong hash)
    {
        if (IsVectorized)
        {
            AddVector(ref FirstBlock, _blockMask, hash, Vector256.Create((uint)hash));
        }
        else
        {
            AddScalar(ref FirstBlock, _blockMask, hash);
        }

        _count++;
    }

    /// <summary>
    /// Adds every key in <paramref name="hashes"/>; the same as calling <see cref="Add(ulong)"/> for each, with the
    /// filter's fields read once per batch rather than once per key. Allocation-free.
    /// </summary>
    /// <param name="hashes">Well-mixed 64-bit hashes of the keys.</param>
    /// <remarks>Not thread-safe: no other member may run concurrently.</remarks>
    public void AddRange(ReadOnlySpan<ulong> hashes)
    {
        ref var blocks = ref FirstBlock;
        var blockMask = _blockMask;
        if (IsVectorized)
        {
            ref var first = ref MemoryMarshal.GetReference(hashes);
            for (nuint i = 0; i < (nuint)hashes.Length; i++)
            {
                ref var hash = ref Unsafe.Add(ref first, i);
                AddVector(ref blocks, blockMask, hash, BroadcastLowHalf(ref hash));
            }
        }
        else
        {
            foreach (var hash in hashes)
            {
                AddScalar(ref blocks, blockMask, hash);
            }
        }

        _count += hashes.Length;
    }

    /// <summary>
    /// Tests whether a key may have been added. <see langword="false"/> is exact (the key was never added);
    /// <see langword="true"/> is wrong with about the probability <see cref="EstimateFalsePositiveRate"/> gives for the
    /// filter's fill. Allocation-free.
    /// </summary>
    /// <param name="hash">The same 64-bit hash that <see cref="Add(ulong)"/> was (or would have been) given.</param>
    /// <returns><see langword="false"/> if the key was certainly never added; otherwise <see langword="true"/>.</returns>
    /// <remarks>Safe to call from many threads at once while no <see cref="Add(ulong)"/>, <see cref="AddRange"/> or <see cref="Clear"/> runs.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool MayContain(ulong hash) =>
        IsVectorized
            ? MayContainVector(ref FirstBlock, _blockMask, hash, Vector256.Create((uint)hash))
            : MayContainScalar(ref FirstBlock, _blockMask, hash);

    /// <summary>
    /// Tests every key in <paramref name="hashes"/>: <c>results[i]</c> becomes <see cref="MayContain(ulong)"/> of
    /// <c>hashes[i]</c>, with the filter's fields read once per batch rather than once per key. Allocation-free.
    /// </summary>
    /// <param name="hashes">The hashes to test.</param>
    /// <param name="results">Receives one answer per hash; entries past <c>hashes.Length</c> are left as they are.</param>
    /// <returns>The number of hashes answered <see langword="true"/> (candidates to verify exactly).</returns>
    /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="hashes"/>.</exception>
    /// <remarks>Safe to call from many threads at once while no <see cref="Add(ulong)"/>, <see cref="AddRange"/> or <see cref="Clear"/> runs.</remarks>
    public int MayContain(ReadOnlySpan<ulong> hashes, Span<bool> results)
    {
        if (results.Length < hashes.Length)
        {
            ThrowResultsTooShort(hashes.Length, results.Length);
        }

        ref var blocks = ref FirstBlock;
        var blockMask = _blockMask;
        ref var first = ref MemoryMarshal.GetReference(hashes);
        ref var answers = ref Unsafe.As<bool, byte>(ref MemoryMarshal.GetReference(results));
        var positives = 0;
        var length = (nuint)hashes.Length;
        for (nuint i = 0; i < length; i++)
        {
            // Ask for the block a few keys ahead now, so several DRAM misses are in flight at once: past the caches
            // that, not the bit arithmetic, bounds a large filter's lookups.
            if (Sse.IsSupported && i + PrefetchDistance < length)
            {
                Prefetch(ref BlockOf(ref blocks, blockMask, Unsafe.Add(ref first, i + PrefetchDistance)));
            }

            ref var hash = ref Unsafe.Add(ref first, i);
            var answer = IsVectorized
                ? MayContainVector(ref blocks, blockMask, hash, BroadcastLowHalf(ref hash))
                : MayContainScalar(ref blocks, blockMask, hash);

            // A bool is stored as 0 or 1, so its byte counts positives without a branch.
            var bit = Unsafe.BitCast<bool, byte>(answer);
            Unsafe.Add(ref answers, i) = bit;
            positives += bit;
        }

        return positives;
    }

    /// <summary>Removes every key and resets <see cref="Count"/> to zero. Not thread-safe.</summary>
    public void Clear()
    {
        Array.Clear(_storage);
        _count = 0;
    }

    /// <summary>The portable path of <see cref="Add(ulong)"/>, for tests: sets exactly the bits the vector path sets.</summary>
    internal void AddScalar(ulong hash)
    {
        AddScalar(ref FirstBlock, _blockMask, hash);
        _count++;
    }

    /// <summary>The 256-bit path of <see cref="Add(ulong)"/>, for tests. Callers check <see cref="IsVectorized"/> first.</summary>
    internal void AddVector(ulong hash)
    {
        AddVector(ref FirstBlock, _blockMask, hash, Vector256.Create((uint)hash));
        _count++;
    }

    /// <summary>The portable path of <see cref="MayContain(ulong)"/>, for tests: answers exactly as the vector path does.</summary>
    internal bool MayContainScalar(ulong hash) => MayContainScalar(ref FirstBlock, _blockMask, hash);

    /// <summary>The 256-bit path of <see cref="MayContain(ulong)"/>, for tests. Callers check <see cref="IsVectorized"/> first.</summary>
    internal bool MayContainVector(ulong hash) => MayContainVector(ref FirstBlock, _blockMask, hash, Vector256.Create((uint)hash));

    /// <summary>The address of block 0, for tests of its alignment.</summary>
    internal nuint FirstBlockAddress => (nuint)Marshal.UnsafeAddrOfPinnedArrayElement(_storage, (int)_firstBlock);

    /// <summary>A copy of the filter's bits, block by block, for tests that compare two filters.</summary>
    internal ulong[] CopyBits() =>
        _storage.AsSpan((int)_firstBlock, (int)(BlockCount * UInt64sPerBlock)).ToArray();

    // The eight odd salts of the Parquet split-block Bloom filter specification; both paths read them from here.
    private static ReadOnlySpan<uint> Salts =>
    [
        0x47B6137Bu, 0x44974D91u, 0x8824AD5Bu, 0xA2B7289Du, 0x705495C7u, 0x2DF1424Bu, 0x9EFC4947u, 0x5C6BFB31u,
    ];

    // Block 0's first ulong: 64-byte aligned (see the constructor).
    private ref ulong FirstBlock => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_storage), _firstBlock);

    // The block's first ulong. The index is masked to the block count, so it never leaves the array and the
    // accesses below skip bounds checks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref ulong BlockOf(ref ulong blocks, uint blockMask, ulong hash) =>
        ref Unsafe.Add(ref blocks, (nuint)((uint)(hash >> 32) & blockMask) * UInt64sPerBlock);

    // The low 32 bits of a hash in memory, in all eight lanes. Broadcasting straight from memory is a load-port
    // operation instead of a shuffle from a general register; the batch loops measured ~25% faster with it. Only the
    // x86 vector path uses it, so the low half is the first four bytes (little-endian).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> BroadcastLowHalf(ref ulong hash) => Vector256.Create(Unsafe.As<ulong, uint>(ref hash));

    // One bit per 32-bit lane: bit (key * salt[lane]) >> 27, for the key broadcast to all lanes.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> MaskOf(Vector256<uint> key)
    {
        var salts = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(Salts));
        var bitIndex = (key * salts) >> BitIndexShift;
        return Avx2.ShiftLeftLogicalVariable(Vector256<uint>.One, bitIndex);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddVector(ref ulong blocks, uint blockMask, ulong hash, Vector256<uint> key)
    {
        ref var block = ref BlockOf(ref blocks, blockMask, hash);
        var updated = Vector256.LoadUnsafe(ref block).AsUInt32() | MaskOf(key);
        updated.AsUInt64().StoreUnsafe(ref block);
    }

    /// <summary>How many keys ahead the batch lookup prefetches.</summary>
    private const int PrefetchDistance = 64;

    /// <summary>Hints the CPU to load the cache line holding <paramref name="block"/>; the storage array is pinned, so the address is stable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(ref ulong block) => Sse.Prefetch0(Unsafe.AsPointer(ref block));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MayContainVector(ref ulong blocks, uint blockMask, ulong hash, Vector256<uint> key)
    {
        var block = Vector256.LoadUnsafe(ref BlockOf(ref blocks, blockMask, hash)).AsUInt32();

        // vptest: true when every bit of the mask is also set in the block.
        return Avx.TestC(block, MaskOf(key));
    }

    private static void AddScalar(ref ulong blocks, uint blockMask, ulong hash)
    {
        ref var word = ref Unsafe.As<ulong, uint>(ref BlockOf(ref blocks, blockMask, hash));
        var key = (uint)hash;
        var salts = Salts;
        for (var i = 0; i < WordsPerBlock; i++)
        {
            Unsafe.Add(ref word, i) |= 1u << (int)((key * salts[i]) >> BitIndexShift);
        }
    }

    private static bool MayContainScalar(ref ulong blocks, uint blockMask, ulong hash)
    {
        ref var word = ref Unsafe.As<ulong, uint>(ref BlockOf(ref blocks, blockMask, hash));
        var key = (uint)hash;
        var salts = Salts;
        var missing = 0u;
        for (var i = 0; i < WordsPerBlock; i++)
        {
            missing |= (1u << (int)((key * salts[i]) >> BitIndexShift)) & ~Unsafe.Add(ref word, i);
        }

        return missing == 0;
    }

    [DoesNotReturn]
    private static void ThrowResultsTooShort(int hashes, int results) =>
        throw new ArgumentException($"results has {results} entries, fewer than the {hashes} hashes to test.", nameof(results));

    private static void ValidateBitsPerKey(double bitsPerKey)
    {
        if (!(bitsPerKey is >= 1 and <= 64))
        {
            throw new ArgumentOutOfRangeException(nameof(bitsPerKey), bitsPerKey, $"{nameof(bitsPerKey)} must be between 1 and 64; it was {bitsPerKey}.");
        }
    }
}
