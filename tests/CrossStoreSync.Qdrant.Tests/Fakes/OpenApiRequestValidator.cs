using System.Globalization;
using System.Text.Json;

namespace CrossStoreSync.Qdrant.Tests.Fakes;

/// <summary>
/// Validates HTTP requests against an OpenAPI 3 document: the path template and method must exist, query parameters
/// must be declared, and the JSON body must satisfy the operation's request schema. Implements the JSON-schema subset
/// Qdrant's document uses: <c>$ref</c>, <c>anyOf</c>, <c>oneOf</c>, <c>allOf</c>, <c>type</c>, <c>nullable</c>,
/// <c>enum</c>, <c>required</c>, <c>properties</c>, <c>additionalProperties</c>, <c>items</c>, <c>minimum</c>,
/// <c>maximum</c>, <c>minItems</c>, <c>minLength</c>, <c>uniqueItems</c> and the <c>uuid</c>, <c>uint*</c>,
/// <c>int*</c> formats.
/// </summary>
/// <remarks>
/// A schema made only of <c>nullable: true</c> (how the document spells "or null" inside <c>anyOf</c>) accepts only
/// null; read literally it would accept anything and make every <c>anyOf</c> pass.
/// </remarks>
public sealed class OpenApiRequestValidator
{
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];
    private readonly JsonElement _root;
    private readonly List<(string[] Segments, JsonElement Item)> _paths = [];

    public OpenApiRequestValidator(JsonDocument document)
    {
        _root = document.RootElement;
        foreach (var path in _root.GetProperty("paths").EnumerateObject())
        {
            _paths.Add((path.Name.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries), path.Value));
        }
    }

    public static OpenApiRequestValidator Load(string file)
    {
        using var stream = File.OpenRead(file);
        return new OpenApiRequestValidator(JsonDocument.Parse(stream));
    }

    /// <summary>Returns the violations of one request (empty when it conforms).</summary>
    public List<string> Validate(string method, string path, IEnumerable<string> queryNames, JsonElement? body)
    {
        var errors = new List<string>();
        var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        JsonElement? item = null;
        var bestLiterals = -1;
        string? template = null;
        foreach (var (templateSegments, candidate) in _paths)
        {
            if (templateSegments.Length != segments.Length)
            {
                continue;
            }

            var literals = 0;
            var ok = true;
            for (var i = 0; i < segments.Length && ok; i++)
            {
                if (templateSegments[i].StartsWith('{'))
                {
                    continue;
                }

                ok = string.Equals(templateSegments[i], segments[i], StringComparison.Ordinal);
                literals++;
            }

            // The most literal template wins: "points/scroll" over "points/{id}".
            if (ok && literals > bestLiterals)
            {
                bestLiterals = literals;
                item = candidate;
                template = "/" + string.Join('/', templateSegments);
            }
        }

        if (item is not { } pathItem)
        {
            errors.Add($"{method} {path}: no path of the OpenAPI document matches.");
            return errors;
        }

        var lower = method.ToLowerInvariant();
        if (!Methods.Contains(lower) || !pathItem.TryGetProperty(lower, out var operation))
        {
            errors.Add($"{method} {template}: the method is not defined for this path.");
            return errors;
        }

        var declared = new HashSet<string>(StringComparer.Ordinal);
        if (operation.TryGetProperty("parameters", out var parameters))
        {
            foreach (var p in parameters.EnumerateArray())
            {
                var parameter = Resolve(p);
                if (parameter.GetProperty("in").GetString() == "query")
                {
                    declared.Add(parameter.GetProperty("name").GetString()!);
                }
            }
        }

        foreach (var name in queryNames)
        {
            if (!declared.Contains(name))
            {
                errors.Add($"{method} {template}: query parameter '{name}' is not declared.");
            }
        }

        var hasSchema = operation.TryGetProperty("requestBody", out var requestBody);
        if (!hasSchema)
        {
            if (body is not null)
            {
                errors.Add($"{method} {template}: sends a body but the operation declares none.");
            }

            return errors;
        }

        requestBody = Resolve(requestBody);
        if (body is not { } json)
        {
            if (requestBody.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.True)
            {
                errors.Add($"{method} {template}: the request body is required.");
            }

            return errors;
        }

        var schema = requestBody.GetProperty("content").GetProperty("application/json").GetProperty("schema");
        ValidateValue(json, schema, "$", errors);
        for (var i = 0; i < errors.Count; i++)
        {
            errors[i] = $"{method} {template}: {errors[i]}";
        }

        return errors;
    }

    /// <summary>
    /// Returns the violations of a JSON response: the body must satisfy the schema the operation declares for
    /// <paramref name="status"/> (or for <c>4XX</c>/<c>5XX</c>/<c>default</c>). Used on the fake's own answers.
    /// </summary>
    public List<string> ValidateResponse(string method, string path, int status, JsonElement body)
    {
        var errors = new List<string>();
        if (FindOperation(method, path, errors) is not { } operation || !operation.TryGetProperty("responses", out var responses))
        {
            return errors;
        }

        var code = status.ToString(CultureInfo.InvariantCulture);
        if (!responses.TryGetProperty(code, out var response) && !responses.TryGetProperty(code[0] + "XX", out response) && !responses.TryGetProperty("default", out response))
        {
            errors.Add($"{method} {path}: status {code} is not declared.");
            return errors;
        }

        response = Resolve(response);
        if (response.TryGetProperty("content", out var content) && content.TryGetProperty("application/json", out var json) && json.TryGetProperty("schema", out var schema))
        {
            ValidateValue(body, schema, "$", errors);
        }

        for (var i = 0; i < errors.Count; i++)
        {
            errors[i] = $"response {status} to {method} {path}: {errors[i]}";
        }

        return errors;
    }

    private JsonElement? FindOperation(string method, string path, List<string> errors)
    {
        var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        JsonElement? item = null;
        var bestLiterals = -1;
        foreach (var (templateSegments, candidate) in _paths)
        {
            if (templateSegments.Length != segments.Length)
            {
                continue;
            }

            var literals = 0;
            var ok = true;
            for (var i = 0; i < segments.Length && ok; i++)
            {
                if (!templateSegments[i].StartsWith('{'))
                {
                    ok = string.Equals(templateSegments[i], segments[i], StringComparison.Ordinal);
                    literals++;
                }
            }

            if (ok && literals > bestLiterals)
            {
                bestLiterals = literals;
                item = candidate;
            }
        }

        if (item is not { } pathItem || !pathItem.TryGetProperty(method.ToLowerInvariant(), out var operation))
        {
            errors.Add($"{method} {path}: not in the OpenAPI document.");
            return null;
        }

        return operation;
    }

    /// <summary>Validates <paramref name="value"/> against <paramref name="schema"/>, appending errors with JSON paths.</summary>
    public void ValidateValue(JsonElement value, JsonElement schema, string at, List<string> errors)
    {
        schema = Resolve(schema);
        if (IsOnlyNullable(schema))
        {
            if (value.ValueKind != JsonValueKind.Null)
            {
                errors.Add($"{at}: expected null.");
            }

            return;
        }

        if (value.ValueKind == JsonValueKind.Null && schema.TryGetProperty("nullable", out var nullable) && nullable.ValueKind == JsonValueKind.True)
        {
            return;
        }

        if (schema.TryGetProperty("anyOf", out var anyOf) && !MatchesCount(value, anyOf, at, errors, out _))
        {
            return;
        }

        if (schema.TryGetProperty("oneOf", out var oneOf))
        {
            if (!MatchesCount(value, oneOf, at, errors, out var count))
            {
                return;
            }

            if (count > 1)
            {
                errors.Add($"{at}: matches {count} branches of oneOf, expected exactly one.");
                return;
            }
        }

        if (schema.TryGetProperty("allOf", out var allOf))
        {
            foreach (var branch in allOf.EnumerateArray())
            {
                ValidateValue(value, branch, at, errors);
            }
        }

        if (schema.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(v => JsonElement.DeepEquals(v, value)))
        {
            errors.Add($"{at}: {value.GetRawText()} is not one of {values.GetRawText()}.");
            return;
        }

        if (schema.TryGetProperty("type", out var type) && !ValidateType(value, type.GetString()!, schema, at, errors))
        {
            return;
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                ValidateObject(value, schema, at, errors);
                break;
            case JsonValueKind.Array:
                ValidateArray(value, schema, at, errors);
                break;
        }
    }

    private bool MatchesCount(JsonElement value, JsonElement branches, string at, List<string> errors, out int count)
    {
        count = 0;
        var collected = new List<string>();
        foreach (var branch in branches.EnumerateArray())
        {
            var branchErrors = new List<string>();
            ValidateValue(value, branch, at, branchErrors);
            if (branchErrors.Count == 0)
            {
                count++;
            }
            else
            {
                collected.Add(string.Join("; ", branchErrors.Take(3)));
            }
        }

        if (count == 0)
        {
            errors.Add($"{at}: matches no branch ({string.Join(" | ", collected)}).");
            return false;
        }

        return true;
    }

    private static bool ValidateType(JsonElement value, string type, JsonElement schema, string at, List<string> errors)
    {
        var ok = type switch
        {
            "object" => value.ValueKind == JsonValueKind.Object,
            "array" => value.ValueKind == JsonValueKind.Array,
            "string" => value.ValueKind == JsonValueKind.String,
            "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "number" => value.ValueKind == JsonValueKind.Number,
            "integer" => value.ValueKind == JsonValueKind.Number && (value.TryGetInt64(out _) || value.TryGetUInt64(out _)),
            _ => false,
        };
        if (!ok)
        {
            errors.Add($"{at}: expected {type}, got {value.ValueKind} {Short(value)}.");
            return false;
        }

        var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
        if (value.ValueKind == JsonValueKind.Number)
        {
            var number = value.GetDouble();
            if (format is not null && format.StartsWith("uint", StringComparison.Ordinal) && !value.TryGetUInt64(out _))
            {
                errors.Add($"{at}: {Short(value)} is not an unsigned integer ({format}).");
            }

            if (schema.TryGetProperty("minimum", out var min) && number < min.GetDouble())
            {
                errors.Add($"{at}: {Short(value)} is below the minimum {min.GetRawText()}.");
            }

            if (schema.TryGetProperty("maximum", out var max) && number > max.GetDouble())
            {
                errors.Add($"{at}: {Short(value)} is above the maximum {max.GetRawText()}.");
            }
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            var text = value.GetString()!;
            if (format == "uuid" && !Guid.TryParse(text, out _))
            {
                errors.Add($"{at}: '{text}' is not a UUID.");
            }

            if (schema.TryGetProperty("minLength", out var minLength) && text.Length < minLength.GetInt32())
            {
                errors.Add($"{at}: '{text}' is shorter than {minLength.GetInt32().ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        return true;
    }

    private void ValidateObject(JsonElement value, JsonElement schema, string at, List<string> errors)
    {
        if (schema.TryGetProperty("required", out var required))
        {
            foreach (var name in required.EnumerateArray())
            {
                if (!value.TryGetProperty(name.GetString()!, out _))
                {
                    errors.Add($"{at}: required property '{name.GetString()}' is missing.");
                }
            }
        }

        var properties = schema.TryGetProperty("properties", out var p) ? p : default;
        var additional = schema.TryGetProperty("additionalProperties", out var a) ? a : default;
        foreach (var property in value.EnumerateObject())
        {
            var path = at + "." + property.Name;
            if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(property.Name, out var propertySchema))
            {
                ValidateValue(property.Value, propertySchema, path, errors);
            }
            else if (additional.ValueKind == JsonValueKind.False)
            {
                errors.Add($"{path}: property is not allowed.");
            }
            else if (additional.ValueKind == JsonValueKind.Object)
            {
                ValidateValue(property.Value, additional, path, errors);
            }
        }
    }

    private void ValidateArray(JsonElement value, JsonElement schema, string at, List<string> errors)
    {
        if (schema.TryGetProperty("minItems", out var minItems) && value.GetArrayLength() < minItems.GetInt32())
        {
            errors.Add($"{at}: has {value.GetArrayLength()} items, fewer than {minItems.GetInt32()}.");
        }

        if (schema.TryGetProperty("uniqueItems", out var unique) && unique.ValueKind == JsonValueKind.True)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in value.EnumerateArray())
            {
                if (!seen.Add(item.GetRawText()))
                {
                    errors.Add($"{at}: item {Short(item)} is repeated but items must be unique.");
                }
            }
        }

        if (schema.TryGetProperty("items", out var items))
        {
            var i = 0;
            foreach (var item in value.EnumerateArray())
            {
                ValidateValue(item, items, $"{at}[{i++}]", errors);
            }
        }
    }

    private JsonElement Resolve(JsonElement schema)
    {
        var guard = 0;
        while (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$ref", out var reference))
        {
            var pointer = reference.GetString()!;
            if (!pointer.StartsWith("#/", StringComparison.Ordinal) || ++guard > 32)
            {
                throw new InvalidOperationException($"Unsupported $ref '{pointer}'.");
            }

            var target = _root;
            foreach (var part in pointer[2..].Split('/'))
            {
                target = target.GetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
            }

            schema = target;
        }

        return schema;
    }

    private static bool IsOnlyNullable(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object || !schema.TryGetProperty("nullable", out var n) || n.ValueKind != JsonValueKind.True)
        {
            return false;
        }

        foreach (var property in schema.EnumerateObject())
        {
            if (property.Name is not ("nullable" or "description" or "default"))
            {
                return false;
            }
        }

        return true;
    }

    private static string Short(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 60 ? text : text[..57] + "...";
    }
}
