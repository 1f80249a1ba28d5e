using CrossStoreSync.Errors;

using System.Globalization;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Internal;

namespace CrossStoreSync.SurrealDb.Stores;

/// <summary>
/// The record layout: <c>data</c> (the document as a native SurrealDB object, so other programs can query it),
/// <c>vector</c>, <c>edges</c> (<c>{type, collection, id, props}</c>, props as the exact JSON text) and <c>_sync</c>
/// (<c>version</c>, <c>hash</c> as 32 hex digits, <c>bucket</c>, <c>pos</c>, <c>deleted</c>, <c>origin</c>, and
/// <c>doc</c>: the document's exact bytes as written).
/// </summary>
/// <remarks>
/// <para>
/// <c>pos</c> is the bucket as 8 lower-case hex digits followed by the id. Its string order (byte order, the same in
/// the index and in comparisons) is (bucket, id) order, so bucket-range scans page over one index with
/// <c>pos &gt; last</c>.
/// </para>
/// <para>
/// Why <c>doc</c>: SurrealDB sorts object keys and reprints numbers, so <c>data</c> cannot give back the bytes the
/// content hash was computed from. The exact bytes are returned only while <c>data</c> still means the same JSON
/// (<see cref="JsonEquivalence"/>); once someone edits <c>data</c> directly, its own rendering is returned, whose
/// projection hash then differs from the recorded one — that is how out-of-band edits are found.
/// </para>
/// </remarks>
internal static class SurrealRecordCodec
{
    /// <summary>The fields every read selects; <c>k</c> is the key as a plain JSON value (no record-id rendering involved).</summary>
    public const string Projection = "id, record::id(id) AS k, data, vector, edges, _sync";

    /// <summary>The live-record condition.</summary>
    public const string Live = "_sync.deleted = false";

    private const string ZeroHash = "00000000000000000000000000000000";

    /// <summary>Builds <c>_sync.pos</c> for a key.</summary>
    public static string Position(uint bucket, string id) => bucket.ToString("x8", CultureInfo.InvariantCulture) + id;

    /// <summary>The smallest <c>pos</c> of a bucket.</summary>
    public static string BucketStart(uint bucket) => bucket.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>Appends the full record content of a change (an entity, or a tombstone for a delete).</summary>
    /// <exception cref="JsonException">The document or an edge's properties are not valid JSON.</exception>
    public static void AppendContent(StringBuilder sql, EntityChange change)
    {
        var bucket = KeyHash.Bucket(change.Key);
        var entity = change.Entity;
        sql.Append('{');
        if (entity is not null)
        {
            sql.Append("data:");
            SurrealQl.Json(sql, entity.Document.Span);
            if (entity.HasVector)
            {
                sql.Append(",vector:");
                SurrealQl.Floats(sql, entity.Vector.Span);
            }

            sql.Append(",edges:[");
            for (var i = 0; i < entity.Edges.Count; i++)
            {
                var edge = entity.Edges[i];
                sql.Append(i == 0 ? "{type:" : ",{type:");
                SurrealQl.String(sql, edge.Type).Append(",collection:");
                SurrealQl.String(sql, edge.Target.Collection).Append(",id:");
                SurrealQl.String(sql, edge.Target.Id);
                if (!edge.Properties.IsEmpty)
                {
                    sql.Append(",props:");
                    SurrealQl.String(sql, DecodeJsonText(edge.Properties.Span));
                }

                sql.Append('}');
            }

            sql.Append("],");
        }

        sql.Append("_sync:{version:");
        SurrealQl.Integer(sql, change.Version.Value).Append(",hash:\"")
            .Append(entity is null ? ZeroHash : change.ContentHash.ToString("x32", CultureInfo.InvariantCulture))
            .Append("\",bucket:");
        SurrealQl.Integer(sql, bucket).Append(",pos:");
        SurrealQl.String(sql, Position(bucket, change.Key.Id)).Append(",deleted:").Append(entity is null ? "true" : "false");
        if (change.Origin is { } origin)
        {
            sql.Append(",origin:");
            SurrealQl.String(sql, origin);
        }

        if (entity is not null)
        {
            // SurrealQl.Json above has validated the bytes as JSON (and so as UTF-8).
            sql.Append(",doc:");
            SurrealQl.String(sql, Encoding.UTF8.GetString(entity.Document.Span));
        }

        sql.Append("}}");
    }

    /// <summary>A record read back: the entity as the store holds it and its recorded <c>_sync</c> metadata.</summary>
    public sealed record Row(SyncEntity Entity, HlcTimestamp Version, UInt128 RecordedHash, uint Bucket, bool ContentIntact);

    /// <summary>Decodes one row selected with <see cref="Projection"/>.</summary>
    /// <exception cref="FormatException">The record is not in the library's layout (edited into another shape).</exception>
    public static Row Decode(JsonElement row, string collection)
    {
        var id = ReadKey(row);
        EntityKey key;
        try
        {
            key = new EntityKey(collection, id);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"Record id {SafeText.Quote(id)} is not a valid entity id: {SafeText.Text(ex.Message)}", ex);
        }

        if (!row.TryGetProperty("_sync", out var sync) || sync.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"Record {SafeText.Quote(key)} has no _sync object; it was not written by CrossStoreSync.");
        }

        var version = new HlcTimestamp(RequireInt64(sync, "version", key));
        var hashText = sync.TryGetProperty("hash", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
        if (hashText is null || !UInt128.TryParse(hashText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hash))
        {
            throw new FormatException($"Record {SafeText.Quote(key)} has no valid _sync.hash.");
        }

        var bucket = (uint)RequireInt64(sync, "bucket", key);
        var (document, intact) = ReadDocument(row, sync);
        var vector = ReadVector(row, key);
        var edges = ReadEdges(row, key);
        return new Row(new SyncEntity(key, document, vector, edges), version, hash, bucket, intact);
    }

    /// <summary>The digest of a decoded row: the projection hash is computed from what SurrealDB really holds.</summary>
    public static EntityDigest ToDigest(Row row) =>
        new(row.Entity.Key, row.Version, row.RecordedHash, ProjectionHash.Compute(row.Entity, StoreKind.Document), row.Bucket);

    /// <summary>
    /// The digest of a row that no longer decodes (edited into an invalid shape out of band): its projection hash is
    /// the hash of the raw record, which cannot match any entity's, so the checker reports it as corrupted.
    /// </summary>
    public static EntityDigest? ToCorruptDigest(JsonElement row, string collection)
    {
        string id;
        try
        {
            id = ReadKey(row);
            EntityKey.ValidateId(id, nameof(id));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return null;
        }

        var key = new EntityKey(collection, id);
        var sync = row.TryGetProperty("_sync", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
        var version = sync.ValueKind == JsonValueKind.Object && sync.TryGetProperty("version", out var v) && v.TryGetInt64(out var lv) ? lv : 0;
        var hash = sync.ValueKind == JsonValueKind.Object && sync.TryGetProperty("hash", out var hv) && hv.ValueKind == JsonValueKind.String
            && UInt128.TryParse(hv.GetString(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var parsed) ? parsed : UInt128.Zero;
        var projection = Hash128.Hash(Encoding.UTF8.GetBytes(row.GetRawText()));
        return new EntityDigest(key, new HlcTimestamp(version), hash, projection, KeyHash.Bucket(key));
    }

    /// <summary>
    /// Reads a record another program wrote (no <c>_sync</c>, or content that no longer matches it) as an entity: the
    /// document is <c>data</c> when present, else the record without <c>id</c>, <c>vector</c>, <c>edges</c> and
    /// <c>_sync</c>; vector and edges as in the library's layout.
    /// </summary>
    /// <exception cref="FormatException">The vector or edges are not in the library's layout.</exception>
    public static SyncEntity DecodeForeign(JsonElement record, EntityKey key)
    {
        byte[] document;
        if (record.TryGetProperty("data", out var data) && data.ValueKind != JsonValueKind.Null)
        {
            document = Encoding.UTF8.GetBytes(data.GetRawText());
        }
        else
        {
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                foreach (var property in record.EnumerateObject())
                {
                    if (property.Name is not ("id" or "vector" or "edges" or "_sync"))
                    {
                        property.WriteTo(writer);
                    }
                }

                writer.WriteEndObject();
            }

            document = buffer.ToArray();
        }

        return new SyncEntity(key, document, ReadVector(record, key), ReadEdges(record, key));
    }

    private static string ReadKey(JsonElement row)
    {
        if (row.TryGetProperty("k", out var k))
        {
            switch (k.ValueKind)
            {
                case JsonValueKind.String:
                    return k.GetString()!;
                case JsonValueKind.Number:
                    return k.GetRawText();
            }
        }

        // Fallback: parse the rendered record id (2.x ⟨…⟩ or 3.x backticks).
        if (row.TryGetProperty("id", out var rid) && rid.ValueKind == JsonValueKind.String && RecordIdParser.TryParse(rid.GetString()!, out _, out var key))
        {
            return key;
        }

        throw new FormatException($"Row has no readable record key: {Truncate(row.GetRawText())}");
    }

    private static (byte[] Document, bool Intact) ReadDocument(JsonElement row, JsonElement sync)
    {
        var hasData = row.TryGetProperty("data", out var data) && data.ValueKind != JsonValueKind.Null;
        if (sync.TryGetProperty("doc", out var doc) && doc.ValueKind == JsonValueKind.String)
        {
            var exact = Encoding.UTF8.GetBytes(doc.GetString()!);
            if (hasData && MeansTheSame(data, exact))
            {
                return (exact, true);
            }
        }

        return (hasData ? Encoding.UTF8.GetBytes(data.GetRawText()) : [], false);
    }

    private static bool MeansTheSame(JsonElement stored, byte[] exact)
    {
        try
        {
            using var written = JsonDocument.Parse(exact);
            return JsonEquivalence.Equivalent(stored, written.RootElement);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static float[] ReadVector(JsonElement row, EntityKey key)
    {
        if (!row.TryGetProperty("vector", out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException($"Record {SafeText.Quote(key)} has a vector that is a {v.ValueKind}, not an array.");
        }

        var result = new float[v.GetArrayLength()];
        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number)
            {
                throw new FormatException($"Record {SafeText.Quote(key)} has a non-number in its vector at index {i}.");
            }

            result[i++] = (float)item.GetDouble();
        }

        return result;
    }

    private static SyncEdge[] ReadEdges(JsonElement row, EntityKey key)
    {
        if (!row.TryGetProperty("edges", out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (e.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException($"Record {SafeText.Quote(key)} has edges that are a {e.ValueKind}, not an array.");
        }

        var edges = new SyncEdge[e.GetArrayLength()];
        var i = 0;
        foreach (var item in e.EnumerateArray())
        {
            try
            {
                var type = item.GetProperty("type").GetString()!;
                var target = new EntityKey(item.GetProperty("collection").GetString()!, item.GetProperty("id").GetString()!);
                var props = item.TryGetProperty("props", out var p) && p.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(p.GetString()!) : [];
                edges[i++] = new SyncEdge(type, target, props);
            }
            catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or ArgumentException)
            {
                throw new FormatException($"Record {SafeText.Quote(key)} has an invalid edge at index {i}: {SafeText.Text(ex.Message)}", ex);
            }
        }

        return edges;
    }

    private static long RequireInt64(JsonElement sync, string name, EntityKey key) =>
        sync.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n)
            ? n
            : throw new FormatException($"Record {SafeText.Quote(key)} has no integer _sync.{name}.");

    private static string DecodeJsonText(ReadOnlySpan<byte> utf8)
    {
        // Validates UTF-8 and JSON before the text is embedded: the stored bytes must be exactly the written ones.
        var reader = new Utf8JsonReader(utf8);
        while (reader.Read())
        {
        }

        return Encoding.UTF8.GetString(utf8);
    }

    private static string Truncate(string text) => text.Length <= 200 ? text : string.Concat(text.AsSpan(0, 197), "...");
}
