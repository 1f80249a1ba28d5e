using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace CrossStoreSync.SurrealDb.Internal;

/// <summary>
/// Parses record ids as the server renders them in JSON (PROTOCOLS.md §3.2): <c>tb:key</c> with a plain identifier or
/// integer key; string keys that need escaping in backticks (3.x, <c>doc:`e1-abc`</c>) or angle brackets
/// (2.x, <c>doc:⟨e1-abc⟩</c>), with a backslash before an escaped closing character or backslash; UUID keys as
/// <c>u'…'</c> / <c>u"…"</c>. The same escapes apply to the table part.
/// </summary>
internal static class RecordIdParser
{
    /// <summary>Splits a rendered record id into its table and key text.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out string? table, [NotNullWhen(true)] out string? key)
    {
        table = null;
        key = null;
        var position = 0;
        if (!TryReadPart(text, ref position, isKey: false, out var t) || position >= text.Length || text[position] != ':')
        {
            return false;
        }

        position++;
        if (!TryReadPart(text, ref position, isKey: true, out var k) || position != text.Length)
        {
            return false;
        }

        table = t;
        key = k;
        return true;
    }

    private static bool TryReadPart(string text, ref int position, bool isKey, [NotNullWhen(true)] out string? part)
    {
        part = null;
        if (position >= text.Length)
        {
            return false;
        }

        var c = text[position];
        if (c == '`')
        {
            return TryReadEscaped(text, ref position, '`', out part);
        }

        if (c == '⟨')
        {
            return TryReadEscaped(text, ref position, '⟩', out part);
        }

        if (isKey && c == 'u' && position + 1 < text.Length && text[position + 1] is '\'' or '"')
        {
            var quote = text[position + 1];
            var end = text.IndexOf(quote, position + 2);
            if (end < 0 || !Guid.TryParse(text.AsSpan(position + 2, end - position - 2), out _))
            {
                return false;
            }

            part = text[(position + 2)..end];
            position = end + 1;
            return true;
        }

        if (isKey && (c is '{' or '['))
        {
            // Object and array keys: kept as their rendered text (the library never writes them).
            part = text[position..];
            position = text.Length;
            return true;
        }

        var start = position;
        if (isKey && c == '-')
        {
            position++;
        }

        while (position < text.Length && (char.IsAsciiLetterOrDigit(text[position]) || text[position] == '_'))
        {
            position++;
        }

        if (position == start || (isKey && text[start] == '-' && position == start + 1))
        {
            return false;
        }

        part = text[start..position];
        return true;
    }

    private static bool TryReadEscaped(string text, ref int position, char close, [NotNullWhen(true)] out string? part)
    {
        part = null;
        var sb = new StringBuilder();
        for (var i = position + 1; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length)
            {
                sb.Append(text[++i]);
                continue;
            }

            if (c == close)
            {
                part = sb.ToString();
                position = i + 1;
                return true;
            }

            sb.Append(c);
        }

        return false;
    }
}
