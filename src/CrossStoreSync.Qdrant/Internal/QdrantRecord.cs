using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>A point as Qdrant returned it (a <c>Record</c>), reduced to what digests and the version guard need.</summary>
internal readonly record struct QdrantRecord(string PointId, string? Key, long? Version, UInt128 Hash, uint Bucket, bool Live, float[]? Vector, float[]? Raw)
{
    /// <summary>Parses one <c>Record</c>; <paramref name="vectorName"/> selects the named vector.</summary>
    public static QdrantRecord Parse(JsonElement record, string vectorName)
    {
        var id = record.GetProperty("id");
        var pointId = id.ValueKind == JsonValueKind.String ? PointIds.Normalize(id.GetString()!) : id.GetRawText();
        string? key = null;
        long? version = null;
        UInt128 hash = default;
        uint bucket = 0;
        var live = false;
        float[]? raw = null;
        if (record.TryGetProperty("payload", out var payload) && payload.ValueKind == JsonValueKind.Object
            && payload.TryGetProperty(SyncPayload.Root, out var sync) && sync.ValueKind == JsonValueKind.Object)
        {
            key = String(sync, SyncPayload.Key);
            if (sync.TryGetProperty(SyncPayload.Version, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var parsed))
            {
                version = parsed;
            }

            if (String(sync, SyncPayload.Hash) is { } hex && UInt128.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h))
            {
                hash = h;
            }

            if (sync.TryGetProperty(SyncPayload.Bucket, out var b) && b.ValueKind == JsonValueKind.Number && b.TryGetUInt32(out var parsedBucket))
            {
                bucket = parsedBucket;
            }

            live = sync.TryGetProperty(SyncPayload.Live, out var l) && l.ValueKind == JsonValueKind.True;
            if (String(sync, SyncPayload.Raw) is { } base64)
            {
                raw = DecodeVector(base64);
            }
        }

        float[]? vector = null;
        if (record.TryGetProperty("vector", out var vectors) && vectors.ValueKind == JsonValueKind.Object
            && vectors.TryGetProperty(vectorName, out var values) && values.ValueKind == JsonValueKind.Array)
        {
            vector = new float[values.GetArrayLength()];
            var i = 0;
            foreach (var value in values.EnumerateArray())
            {
                vector[i++] = value.GetSingle();
            }
        }

        return new QdrantRecord(pointId, key, version, hash, bucket, live, vector, raw);
    }

    /// <summary>True when the point holds a live entity: a vector, the live flag and a version.</summary>
    public bool IsLive => Live && Vector is { Length: > 0 } && Version is not null && Key is not null;

    /// <summary>
    /// The digest of a live point. The projection hash comes from the vector Qdrant really holds: for a cosine
    /// collection the exact written vector (<see cref="SyncPayload.Raw"/>) is used only when normalising it gives the
    /// stored vector, so an edit of either the vector or the payload shows up as drift.
    /// </summary>
    public EntityDigest ToDigest(string collection, VectorDistance distance)
    {
        var key = new EntityKey(collection, Key!);
        var vector = Vector!;
        if (distance == VectorDistance.Cosine && Raw is { } raw && raw.Length == vector.Length && NormalizesTo(raw, vector))
        {
            vector = raw;
        }

        var projection = ProjectionHash.Compute(new SyncEntity(key, default, vector), StoreKind.Vector);
        return new EntityDigest(key, new HlcTimestamp(Version!.Value), Hash, projection, Bucket);
    }

    /// <summary>Encodes a vector as little-endian float32 bytes in base64.</summary>
    public static string EncodeVector(ReadOnlySpan<float> vector)
    {
        var bytes = new byte[vector.Length * 4];
        for (var i = 0; i < vector.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), vector[i]);
        }

        return Convert.ToBase64String(bytes);
    }

    private static float[]? DecodeVector(string base64)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            return null; // an edited payload: the stored vector decides the projection
        }

        if (bytes.Length % 4 != 0)
        {
            return null;
        }

        var vector = new float[bytes.Length / 4];
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        }

        return vector;
    }

    /// <summary>Rust's <c>f32::EPSILON</c> (machine epsilon), which Qdrant compares the norm against; not <see cref="float.Epsilon"/>.</summary>
    public const float MachineEpsilon = 1.1920929e-7f;

    /// <summary>Qdrant's cosine preprocessing: divide by the L2 norm unless it is below machine epsilon.</summary>
    private static bool NormalizesTo(float[] raw, float[] stored)
    {
        var sum = 0f;
        foreach (var x in raw)
        {
            sum += x * x;
        }

        var length = MathF.Sqrt(sum);
        var scale = length < MachineEpsilon ? 1f : 1f / length;
        for (var i = 0; i < raw.Length; i++)
        {
            var expected = length < MachineEpsilon ? raw[i] : raw[i] * scale;
            if (MathF.Abs(expected - stored[i]) > 1e-5f * MathF.Max(1f, MathF.Abs(expected)))
            {
                return false;
            }
        }

        return true;
    }

    private static string? String(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
