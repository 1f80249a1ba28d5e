using System.Buffers.Binary;
using System.Globalization;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using Google.Protobuf.Collections;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>A point as Qdrant returned it (a <c>RetrievedPoint</c>), reduced to what digests and the version guard need.</summary>
internal readonly record struct QdrantRecord(string PointId, string? Key, long? Version, UInt128 Hash, uint Bucket, bool Live, float[]? Vector, float[]? Raw)
{
    /// <summary>Parses one point; <paramref name="vectorName"/> selects the named vector.</summary>
    public static QdrantRecord Parse(RetrievedPoint point, string vectorName) => Parse(point.Id, point.Payload, point.Vectors, vectorName);

    /// <summary>Parses a point's id, payload and vectors; <paramref name="vectorName"/> selects the named vector.</summary>
    public static QdrantRecord Parse(PointId id, MapField<string, Value> payload, VectorsOutput? vectors, string vectorName)
    {
        string? key = null;
        long? version = null;
        UInt128 hash = default;
        uint bucket = 0;
        var live = false;
        float[]? raw = null;
        if (payload.TryGetValue(SyncPayload.Root, out var root) && root.KindCase == Value.KindOneofCase.StructValue)
        {
            var sync = root.StructValue.Fields;
            key = String(sync, SyncPayload.Key);
            if (sync.TryGetValue(SyncPayload.Version, out var v) && v.KindCase == Value.KindOneofCase.IntegerValue)
            {
                version = v.IntegerValue;
            }

            if (String(sync, SyncPayload.Hash) is { } hex && UInt128.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h))
            {
                hash = h;
            }

            if (sync.TryGetValue(SyncPayload.Bucket, out var b) && b.KindCase == Value.KindOneofCase.IntegerValue && b.IntegerValue is >= 0 and <= uint.MaxValue)
            {
                bucket = (uint)b.IntegerValue;
            }

            live = sync.TryGetValue(SyncPayload.Live, out var l) && l.KindCase == Value.KindOneofCase.BoolValue && l.BoolValue;
            if (String(sync, SyncPayload.Raw) is { } base64)
            {
                raw = DecodeVector(base64);
            }
        }

        float[]? vector = null;
        if (vectors is { VectorsOptionsCase: VectorsOutput.VectorsOptionsOneofCase.Vectors } && vectors.Vectors.Vectors.TryGetValue(vectorName, out var output))
        {
            vector = Dense(output);
        }

        return new QdrantRecord(PointIds.Text(id), key, version, hash, bucket, live, vector, raw);
    }

    /// <summary>
    /// The dense values of a vector. Qdrant sends them in <c>dense</c>; servers before the oneof existed filled the
    /// deprecated <c>data</c> field, still read for them.
    /// </summary>
    private static float[] Dense(VectorOutput output)
    {
        if (output.VectorCase == VectorOutput.VectorOneofCase.Dense)
        {
            return [.. output.Dense.Data];
        }

#pragma warning disable CS0612 // The deprecated field is the only one an old server fills.
        return [.. output.Data];
#pragma warning restore CS0612
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

    private static string? String(MapField<string, Value> fields, string name) =>
        fields.TryGetValue(name, out var value) && value.KindCase == Value.KindOneofCase.StringValue ? value.StringValue : null;
}
