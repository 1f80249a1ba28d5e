using System.Globalization;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using Google.Protobuf.Collections;
using Qdrant.Client.Grpc;

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
    public const string DeletedPath = Root + "." + Deleted;

    /// <summary>
    /// Adds the <c>_sync</c> object of <paramref name="change"/> to a point's payload. Integers travel as Qdrant's
    /// <c>integer_value</c> (int64), so a 63-bit version is stored and matched exactly.
    /// </summary>
    /// <param name="payload">The point's payload.</param>
    /// <param name="change">The change being written.</param>
    /// <param name="live">True when the point carries the entity's vector.</param>
    /// <param name="raw">The written vector in base64 (cosine collections), or null.</param>
    public static void Write(MapField<string, Value> payload, EntityChange change, bool live, string? raw)
    {
        var fields = new Struct();
        fields.Fields.Add(Key, new Value { StringValue = change.Key.Id });
        fields.Fields.Add(Version, new Value { IntegerValue = change.Version.Value });
        fields.Fields.Add(Hash, new Value { StringValue = change.ContentHash.ToString("x32", CultureInfo.InvariantCulture) });
        fields.Fields.Add(Bucket, new Value { IntegerValue = KeyHash.Bucket(change.Key) });
        fields.Fields.Add(Live, new Value { BoolValue = live });
        fields.Fields.Add(Deleted, new Value { BoolValue = change.Kind == ChangeKind.Delete });
        fields.Fields.Add(Origin, change.Origin is null ? new Value { NullValue = NullValue.NullValue } : new Value { StringValue = change.Origin });
        if (raw is not null)
        {
            fields.Fields.Add(Raw, new Value { StringValue = raw });
        }

        payload.Add(Root, new Value { StructValue = fields });
    }
}
