using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Hashing;

/// <summary>
/// The hash of what a store of a given kind holds for an entity: a document store holds everything, a vector store
/// the key and vector, a graph store the key and edges. A store computes it from the content it really stores, and
/// the consistency checker computes it from the source entity; a difference means the record was edited outside the
/// library.
/// </summary>
public static class ProjectionHash
{
    /// <summary>The sections a store of <paramref name="kind"/> projects.</summary>
    public static EncodingSections SectionsFor(StoreKind kind) => kind switch
    {
        StoreKind.Document => EncodingSections.All,
        StoreKind.Vector => EncodingSections.Vector,
        StoreKind.Graph => EncodingSections.Edges,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown store kind."),
    };

    /// <summary>The projection hash of <paramref name="entity"/> for a store of <paramref name="kind"/>.</summary>
    public static UInt128 Compute(SyncEntity entity, StoreKind kind) => EntityEncoding.ComputeHash(entity, SectionsFor(kind));
}
