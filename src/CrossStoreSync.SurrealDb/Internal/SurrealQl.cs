using CrossStoreSync.Errors;

using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CrossStoreSync.SurrealDb.Internal;

/// <summary>
/// Writes values into SurrealQL text as safely encoded literals. User data never reaches a query any other way.
/// </summary>
/// <remarks>
/// Why literals and not JSON-RPC variables: the server parses JSON parameters with "legacy strands", so a user string
/// such as <c>a:b</c>, an RFC 3339 datetime or a UUID would be stored as a record id, datetime or UUID
/// (PROTOCOLS.md §3.3). A double-quoted string in query text always stays a string, in 2.x and 3.x alike. Every string
/// is written by <see cref="String"/>, which escapes the quote, the backslash and control characters, so no input can
/// end the literal early.
/// </remarks>
internal static class SurrealQl
{
    /// <summary>Appends <paramref name="value"/> as a double-quoted SurrealQL string literal.</summary>
    public static StringBuilder String(StringBuilder sql, string value)
    {
        sql.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    sql.Append("\\\"");
                    break;
                case '\\':
                    sql.Append("\\\\");
                    break;
                case '\n':
                    sql.Append("\\n");
                    break;
                case '\r':
                    sql.Append("\\r");
                    break;
                case '\t':
                    sql.Append("\\t");
                    break;
                default:
                    if (char.IsControl(c))
                    {
                        sql.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sql.Append(c);
                    }

                    break;
            }
        }

        return sql.Append('"');
    }

    /// <summary>
    /// Appends a table name. Collection names are validated identifiers (letters, digits, <c>_</c>), so the backticks only
    /// keep SurrealQL keywords (<c>select</c>, <c>value</c>…) from being read as syntax.
    /// </summary>
    public static StringBuilder Table(StringBuilder sql, string table)
    {
        foreach (var c in table)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                throw new ArgumentException($"Table name {SafeText.Quote(table)} contains {SafeText.Quote(c.ToString())}; only letters, digits and '_' are allowed.", nameof(table));
            }
        }

        return sql.Append('`').Append(table).Append('`');
    }

    /// <summary>
    /// Appends a record id as a literal <c>`table`:`key`</c> with a backtick-escaped string key; used where a function
    /// call cannot stand, such as the start of a record range (<c>`t`:`k`&gt;..</c>).
    /// </summary>
    public static StringBuilder RecordLiteral(StringBuilder sql, string table, string key)
    {
        Table(sql, table).Append(":`");
        foreach (var c in key)
        {
            if (c is '`' or '\\')
            {
                sql.Append('\\');
            }

            sql.Append(c);
        }

        return sql.Append('`');
    }

    /// <summary>Appends a 64-bit integer.</summary>
    public static StringBuilder Integer(StringBuilder sql, long value) => sql.Append(value.ToString(CultureInfo.InvariantCulture));

    /// <summary>Appends a float array (vectors); each value is written so that it parses back to the same <see cref="float"/>.</summary>
    public static StringBuilder Floats(StringBuilder sql, ReadOnlySpan<float> values)
    {
        sql.Append('[');
        for (var i = 0; i < values.Length; i++)
        {
            if (i > 0)
            {
                sql.Append(',');
            }

            var v = values[i];
            if (!float.IsFinite(v))
            {
                throw new ArgumentException($"Vector value {v} at index {i} is not finite.", nameof(values));
            }

            // "R" gives the shortest text that round-trips; the "f" suffix makes SurrealQL read it as a float even when
            // it has no decimal point, so whole numbers do not become ints.
            sql.Append(v.ToString("R", CultureInfo.InvariantCulture)).Append('f');
        }

        return sql.Append(']');
    }

    /// <summary>
    /// Appends a JSON document as a SurrealQL value: objects, arrays, strings (escaped), numbers, booleans and null.
    /// </summary>
    /// <exception cref="JsonException">The bytes are not valid JSON.</exception>
    public static StringBuilder Json(StringBuilder sql, ReadOnlySpan<byte> utf8Json)
    {
        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 256 });
        var first = true;
        var afterProperty = false;
        while (reader.Read())
        {
            var token = reader.TokenType;
            if (token is not (JsonTokenType.EndObject or JsonTokenType.EndArray) && !first && !afterProperty)
            {
                sql.Append(',');
            }

            first = false;
            afterProperty = false;
            switch (token)
            {
                case JsonTokenType.StartObject:
                    sql.Append('{');
                    first = true;
                    break;
                case JsonTokenType.StartArray:
                    sql.Append('[');
                    first = true;
                    break;
                case JsonTokenType.EndObject:
                    sql.Append('}');
                    break;
                case JsonTokenType.EndArray:
                    sql.Append(']');
                    break;
                case JsonTokenType.PropertyName:
                    String(sql, reader.GetString()!).Append(':');
                    afterProperty = true;
                    break;
                case JsonTokenType.String:
                    String(sql, reader.GetString()!);
                    break;
                case JsonTokenType.Number:
                    Number(sql, reader.ValueSpan);
                    break;
                case JsonTokenType.True:
                    sql.Append("true");
                    break;
                case JsonTokenType.False:
                    sql.Append("false");
                    break;
                case JsonTokenType.Null:
                    sql.Append("NULL");
                    break;
                default:
                    throw new JsonException($"Unexpected JSON token {token}.");
            }
        }

        return sql;
    }

    private static void Number(StringBuilder sql, ReadOnlySpan<byte> token)
    {
        // The reader has validated the token's JSON number grammar, so it holds only digits, '-', '+', '.', 'e', 'E'.
        var text = Encoding.ASCII.GetString(token);
        var isInteger = token.IndexOfAny("."u8) < 0 && token.IndexOfAny("eE"u8) < 0;
        if (isInteger)
        {
            // Integers beyond 64 bits do not parse as SurrealQL ints; a decimal keeps their exact value.
            sql.Append(text);
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            {
                sql.Append("dec");
            }

            return;
        }

        if (!double.IsFinite(double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)))
        {
            throw new JsonException($"The number {text} is outside the range of a 64-bit float.");
        }

        sql.Append(text);
        if (token.IndexOfAny("."u8) < 0)
        {
            // "1e5" alone is fine in SurrealQL, but the suffix makes the float type explicit like the vector path.
            sql.Append('f');
        }
    }
}
