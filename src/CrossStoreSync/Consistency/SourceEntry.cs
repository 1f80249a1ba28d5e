using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Consistency;

/// <summary>What the source holds for one entity, as far as a comparison needs it.</summary>
internal readonly record struct SourceEntry(EntityKey Key, ulong KeyHash, HlcTimestamp Version, UInt128 ContentHash, SyncEntity? Entity)
{
    /// <summary>Approximate bytes a digest read costs.</summary>
    public const int DigestBytes = 64;

    /// <summary>Whether a store of <paramref name="kind"/> should hold this entity (a vector store holds only entities with vectors); null when unknown without the entity.</summary>
    public bool? ExpectedIn(StoreKind kind) => kind != StoreKind.Vector ? true : Entity?.HasVector;

    /// <summary>The Merkle/Bloom digest of this entry as a store of <paramref name="kind"/> should report it.</summary>
    public UInt128 Digest(StoreKind kind, bool deep) =>
        EntityDigestHash.Compute(KeyHash, Version.Value, ContentHash, deep ? ProjectionHash.Compute(Entity!, kind) : UInt128.Zero);

    /// <summary>The digest a store reports for <paramref name="digest"/>; <paramref name="keyHash"/> is the key's 64-bit hash.</summary>
    public static UInt128 StoreDigest(in EntityDigest digest, ulong keyHash, bool deep) =>
        EntityDigestHash.Compute(keyHash, digest.Version.Value, digest.RecordedHash, deep ? digest.ProjectionHash : UInt128.Zero);
}
