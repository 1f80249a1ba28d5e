using CrossStoreSync.Errors;

using System.Text.Json;
using CrossStoreSync.Configuration;
using CrossStoreSync.Model;

namespace CrossStoreSync.Validation;

/// <summary>
/// Checks an entity against the configured limits before anything is written, so bad input fails with an
/// <see cref="ArgumentException"/> that names the field and the value and leaves every store untouched.
/// </summary>
internal sealed class EntityValidator(CrossStoreSyncOptions options)
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    public void ValidateKey(EntityKey key, string paramName)
    {
        if (key.IsDefault)
        {
            throw new ArgumentException("Key must be a valid EntityKey, not default.", paramName);
        }

        if (!options.TryGetCollection(key.Collection, out _))
        {
            throw new ArgumentException($"Collection {SafeText.Quote(key.Collection)} of {SafeText.Quote(key)} is not configured; declare it with CrossStoreSyncOptions.AddCollection.", paramName);
        }
    }

    public void Validate(SyncEntity entity, string paramName)
    {
        ArgumentNullException.ThrowIfNull(entity, paramName);
        ValidateKey(entity.Key, paramName);
        options.TryGetCollection(entity.Key.Collection, out var collection);

        var document = entity.Document.Span;
        if (document.Length > options.MaxDocumentBytes)
        {
            throw new ArgumentException($"Document of {SafeText.Quote(entity.Key)} is {document.Length} bytes; the limit (CrossStoreSyncOptions.MaxDocumentBytes) is {options.MaxDocumentBytes}.", paramName + ".Document");
        }

        ValidateJsonObject(document, entity.Key, paramName + ".Document", "Document");

        var vector = entity.Vector.Span;
        if (!vector.IsEmpty)
        {
            if (collection.VectorDimension is not { } dimension)
            {
                throw new ArgumentException($"Vector of {SafeText.Quote(entity.Key)} has {vector.Length} components but collection {SafeText.Quote(collection.Name)} is configured without vectors.", paramName + ".Vector");
            }

            if (vector.Length != dimension)
            {
                throw new ArgumentException($"Vector of {SafeText.Quote(entity.Key)} has dimension {vector.Length}; collection {SafeText.Quote(collection.Name)} expects {dimension}.", paramName + ".Vector");
            }

            for (var i = 0; i < vector.Length; i++)
            {
                if (!float.IsFinite(vector[i]))
                {
                    throw new ArgumentException($"Vector of {SafeText.Quote(entity.Key)} has the non-finite value {vector[i]} at index {i}; every component must be finite.", paramName + ".Vector");
                }
            }
        }

        var edges = entity.Edges;
        if (edges.Count > options.MaxEdgesPerEntity)
        {
            throw new ArgumentException($"{SafeText.Quote(entity.Key)} has {edges.Count} edges; the limit (CrossStoreSyncOptions.MaxEdgesPerEntity) is {options.MaxEdgesPerEntity}.", paramName + ".Edges");
        }

        long total = document.Length + ((long)vector.Length * 4);
        for (var i = 0; i < edges.Count; i++)
        {
            var edge = edges[i] ?? throw new ArgumentException($"Edge {i} of {SafeText.Quote(entity.Key)} is null.", paramName + ".Edges");
            if (edge.Target.IsDefault)
            {
                throw new ArgumentException($"Edge {i} of {SafeText.Quote(entity.Key)} has a default target key.", paramName + ".Edges");
            }

            if (!edge.Properties.IsEmpty)
            {
                ValidateJsonObject(edge.Properties.Span, entity.Key, $"{paramName}.Edges[{i}].Properties", $"Properties of edge {i}");
            }

            total += edge.Properties.Length + edge.Target.Id.Length + edge.Type.Length;
        }

        if (total > options.MaxEntityBytes)
        {
            throw new ArgumentException($"{SafeText.Quote(entity.Key)} is {total} bytes in all; the limit (CrossStoreSyncOptions.MaxEntityBytes) is {options.MaxEntityBytes}.", paramName);
        }
    }

    private static void ValidateJsonObject(ReadOnlySpan<byte> json, EntityKey key, string paramName, string what)
    {
        if (json.IsEmpty)
        {
            throw new ArgumentException($"{what} of {SafeText.Quote(key)} is empty; it must be a JSON object.", paramName);
        }

        // Utf8JsonReader does not check the bytes inside string tokens, and a store would reject or mangle them later.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw new ArgumentException($"{what} of {SafeText.Quote(key)} is not valid JSON: invalid UTF-8 at byte {FirstInvalidUtf8(json)}.", paramName);
        }

        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new ArgumentException($"{what} of {SafeText.Quote(key)} is a JSON {reader.TokenType}, not an object (starts with {Preview(json)}).", paramName);
            }

            // Skip walks the whole object, validating every token, without allocating.
            reader.Skip();
            if (reader.Read())
            {
                throw new ArgumentException($"{what} of {SafeText.Quote(key)} has data after the JSON object at byte {reader.TokenStartIndex}.", paramName);
            }
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"{what} of {SafeText.Quote(key)} is not valid JSON: {SafeText.Text(ex.Message)} (starts with {Preview(json)}).", paramName, ex);
        }
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var index = 0;
        while (index < bytes.Length && System.Text.Rune.DecodeFromUtf8(bytes[index..], out _, out var consumed) == System.Buffers.OperationStatus.Done)
        {
            index += consumed;
        }

        return index;
    }

    /// <summary>The start of a document, quoted (a document is user input and may hold anything).</summary>
    private static string Preview(ReadOnlySpan<byte> json) => SafeText.QuoteUtf8(json, 40);
}
