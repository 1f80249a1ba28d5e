using System.Runtime.InteropServices;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>
/// Binds a run of changes as the column arrays of the document store's upsert (<c>unnest($1 … $11)</c>). Vectors
/// travel as one flat <c>real[]</c> ($7) with a 1-based offset and a length per row ($9, $10) that the statement
/// slices, because PostgreSQL arrays cannot hold rows of different lengths; a length of 0 stores NULL.
/// </summary>
internal static class UpsertRows
{
    public static void Bind(NpgsqlParameterCollection parameters, List<EntityChange> changes, int start, int end)
    {
        var count = end - start;
        var ids = new string[count];
        var versions = new long[count];
        var hashes = new byte[count][];
        var buckets = new long[count];
        var deleted = new bool[count];
        var origins = new string?[count];
        var documents = new byte[]?[count];
        var offsets = new int[count];
        var lengths = new int[count];
        var edges = new byte[]?[count];

        var components = 0;
        for (var i = start; i < end; i++)
        {
            components += changes[i].Entity?.Vector.Length ?? 0;
        }

        var vectors = new float[components];
        var position = 0;
        for (var row = 0; row < count; row++)
        {
            var change = changes[start + row];
            var entity = change.Entity;
            ids[row] = change.Key.Id;
            versions[row] = change.Version.Value;
            hashes[row] = DocumentCodec.HashToBytes(change.ContentHash);
            buckets[row] = KeyHash.Bucket(change.Key);
            deleted[row] = entity is null;
            origins[row] = change.Origin;
            if (entity is null)
            {
                continue;
            }

            documents[row] = WholeArray(entity.Document);
            edges[row] = DocumentCodec.EncodeEdges(entity.Edges);
            var vector = entity.Vector.Span;
            if (!vector.IsEmpty)
            {
                vector.CopyTo(vectors.AsSpan(position));
                offsets[row] = position + 1;
                lengths[row] = vector.Length;
                position += vector.Length;
            }
        }

        parameters.Add(Array(NpgsqlDbType.Text, ids));
        parameters.Add(Array(NpgsqlDbType.Bigint, versions));
        parameters.Add(Array(NpgsqlDbType.Bytea, hashes));
        parameters.Add(Array(NpgsqlDbType.Bigint, buckets));
        parameters.Add(Array(NpgsqlDbType.Boolean, deleted));
        parameters.Add(Array(NpgsqlDbType.Text, origins));
        parameters.Add(Array(NpgsqlDbType.Real, vectors));
        parameters.Add(Array(NpgsqlDbType.Bytea, documents));
        parameters.Add(Array(NpgsqlDbType.Integer, offsets));
        parameters.Add(Array(NpgsqlDbType.Integer, lengths));
        parameters.Add(Array(NpgsqlDbType.Bytea, edges));
    }

    /// <summary>The document's own array when the memory spans all of it (the usual case), else a copy.</summary>
    private static byte[] WholeArray(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : memory.ToArray();

    private static NpgsqlParameter Array(NpgsqlDbType element, object values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | element, Value = values };
}
