namespace CrossStoreSync.Model;

/// <summary>An entity as a store holds it, with the sync metadata recorded next to it.</summary>
/// <param name="Entity">The entity.</param>
/// <param name="Version">The version the store holds.</param>
/// <param name="ContentHash">The content hash recorded with the entity.</param>
public sealed record VersionedEntity(SyncEntity Entity, HlcTimestamp Version, UInt128 ContentHash);

/// <summary>
/// What a store reports about one record: the recorded sync metadata and a hash of the content it really stores.
/// </summary>
/// <param name="Key">The entity's key.</param>
/// <param name="Version">The recorded version (<c>_sync.version</c>).</param>
/// <param name="RecordedHash">The recorded content hash of the source state (<c>_sync.hash</c>).</param>
/// <param name="ProjectionHash">A hash of what the store actually holds for this key, computed from the stored
/// content with <see cref="Hashing.ProjectionHash"/>; differs from the expected projection when the record was
/// edited outside the library.</param>
/// <param name="Bucket">The recorded bucket (<c>_sync.bucket</c>, top 32 bits of the key hash).</param>
/// <param name="KeyHash">The key's full 64-bit <see cref="Hashing.KeyHash"/> when the store keeps it, or 0 when readers must compute it.</param>
public readonly record struct EntityDigest(EntityKey Key, HlcTimestamp Version, UInt128 RecordedHash, UInt128 ProjectionHash, uint Bucket, ulong KeyHash = 0)
{
    /// <summary>The key's 64-bit hash: the stored one, or computed from the key.</summary>
    public ulong GetKeyHash() => KeyHash != 0 ? KeyHash : Hashing.KeyHash.Compute(Key);
}

/// <summary>An inclusive range of 32-bit buckets (the top 32 bits of <see cref="Hashing.KeyHash"/>).</summary>
/// <param name="First">First bucket, inclusive.</param>
/// <param name="Last">Last bucket, inclusive.</param>
public readonly record struct BucketRange(uint First, uint Last)
{
    /// <summary>Every bucket.</summary>
    public static BucketRange All => new(0, uint.MaxValue);

    /// <summary>True when <paramref name="bucket"/> lies in the range.</summary>
    public bool Contains(uint bucket) => bucket >= First && bucket <= Last;

    /// <summary>The range covering bucket <paramref name="index"/> when the key space is split into 2^<paramref name="bits"/> buckets.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is not in 1..32 or <paramref name="index"/> is too large.</exception>
    public static BucketRange ForPrefix(int bits, uint index)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 32);
        if (bits < 32)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, 1u << bits);
        }

        var shift = 32 - bits;
        var first = (uint)((ulong)index << shift);
        var last = (uint)(first + ((1UL << shift) - 1));
        return new BucketRange(first, last);
    }
}
