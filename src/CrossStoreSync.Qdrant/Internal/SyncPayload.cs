namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// The <c>_sync</c> payload object every point carries, and the paths filters and indexes use. Nested under one key so
/// the application's own payload fields, if any are added outside the library, never collide with it.
/// </summary>
internal static class SyncPayload
{
    public const string Root = "_sync";

    /// <summary>The original entity id (the point id is a UUID derived from it).</summary>
    public const string Key = "key";

    /// <summary>The change's version (HLC, 63-bit integer): exact as an integer payload.</summary>
    public const string Version = "version";

    /// <summary>The source content hash, 32 lowercase hex digits.</summary>
    public const string Hash = "hash";

    /// <summary>The key's bucket (top 32 bits of the key hash).</summary>
    public const string Bucket = "bucket";

    /// <summary>True when the point holds a live vector; false for tombstones and for entities without a vector.</summary>
    public const string Live = "live";

    /// <summary>True for the tombstone a delete leaves.</summary>
    public const string Deleted = "deleted";

    /// <summary>The origin tag of the change that wrote the point, or null.</summary>
    public const string Origin = "origin";

    /// <summary>
    /// Cosine collections only: the vector exactly as written, little-endian float32 in base64. Qdrant normalises
    /// cosine vectors on upload and returns the normalised ones, so the stored vector alone cannot reproduce the
    /// source's projection hash.
    /// </summary>
    public const string Raw = "raw";

    public const string VersionPath = Root + "." + Version;
    public const string BucketPath = Root + "." + Bucket;
    public const string LivePath = Root + "." + Live;
    public const string OriginPath = Root + "." + Origin;
    public const string KeyPath = Root + "." + Key;
}
