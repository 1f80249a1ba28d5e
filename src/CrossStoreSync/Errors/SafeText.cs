using System.Globalization;
using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Errors;

/// <summary>
/// Quotes untrusted text (ids, collection names, edge types, document previews, a server's error text) for exception
/// messages and log values, so that it can neither forge a log line nor drive a terminal, and cannot flood either.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Quote(string?, int)"/> wraps the value in single quotes and escapes, C#-style, everything that could break
/// out of them or change how the line is shown: the backslash and the quote itself; every control character (C0 such
/// as NUL, CR, LF, ESC and DEL; C1 such as NEL U+0085); the line and paragraph separators U+2028 and U+2029; format
/// characters (category Cf: the bidirectional marks, embeddings, overrides and isolates U+061C, U+200E/F, U+202A–U+202E,
/// U+2066–U+2069, zero-width characters, the byte-order mark); and unpaired surrogates. A value longer than the bound is
/// cut (never inside a surrogate pair or an escape) and marked with <c>...</c> and its full length. Anything else, letters
/// of every script and emoji included, is kept as it is.
/// </para>
/// <para>Every library package quotes user input through this one helper. Thread-safe and allocation-light (error paths only).</para>
/// </remarks>
public static class SafeText
{
    /// <summary>The bound on the quoted text (between the quotes) used when none is given: 200 characters.</summary>
    public const int DefaultMaxLength = 200;

    /// <summary>The smallest bound accepted: room for an escape and the ellipsis.</summary>
    public const int MinMaxLength = 8;

    /// <summary>
    /// Quotes <paramref name="value"/>: <c>'x\n2030-01-01 ERROR forged'</c> for an id holding a line feed; <c>null</c>
    /// (without quotes) for null.
    /// </summary>
    /// <param name="value">The untrusted text.</param>
    /// <param name="maxLength">The most characters between the quotes (escapes count as written); a longer value is cut
    /// and followed by its length, for example <c>'aaaa...' (5000 chars)</c>. At least <see cref="MinMaxLength"/>.</param>
    /// <returns>The quoted, escaped, bounded text.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below <see cref="MinMaxLength"/>.</exception>
    public static string Quote(string? value, int maxLength = DefaultMaxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, MinMaxLength);
        if (value is null)
        {
            return "null";
        }

        return value.Length <= maxLength && !NeedsEscaping(value)
            ? string.Concat("'", value, "'")
            : Build(value, maxLength, value.Length, "chars");
    }

    /// <summary>
    /// For running text that is not a value of its own — an exception's message, a server's error text — embedded in a
    /// message: returned as it is when it holds nothing that <see cref="Quote(string?, int)"/> must escape (quotes and
    /// backslashes are fine in running text, so messages that already quote their values stay readable when they are
    /// wrapped again) and fits <paramref name="maxLength"/>; otherwise quoted exactly as <see cref="Quote(string?, int)"/> does.
    /// </summary>
    /// <param name="text">The text; null gives <c>null</c>.</param>
    /// <param name="maxLength">The bound (at least <see cref="MinMaxLength"/>). <value>Default 1000.</value></param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below <see cref="MinMaxLength"/>.</exception>
    public static string Text(string? text, int maxLength = 1000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, MinMaxLength);
        if (text is null || text.Length > maxLength)
        {
            return Quote(text, maxLength);
        }

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (c is not ('\\' or '\'') && NeedsEscaping(c))
            {
                return Quote(text, maxLength);
            }
        }

        return text;
    }

    /// <summary>Quotes a key as <c>'collection/id'</c> (see <see cref="Quote(string?, int)"/>).</summary>
    /// <param name="key">The key; <c>default</c> quotes as <c>(no key)</c>.</param>
    /// <param name="maxLength">The bound between the quotes.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below <see cref="MinMaxLength"/>.</exception>
    public static string Quote(EntityKey key, int maxLength = DefaultMaxLength) =>
        key.IsDefault ? "(no key)" : Quote(key.ToString(), maxLength);

    /// <summary>Quotes the start of a UTF-8 value (a document preview); invalid bytes show as U+FFFD.</summary>
    /// <param name="utf8">The bytes.</param>
    /// <param name="maxLength">The bound between the quotes.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below <see cref="MinMaxLength"/>.</exception>
    public static string QuoteUtf8(ReadOnlySpan<byte> utf8, int maxLength = DefaultMaxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, MinMaxLength);

        // Decoding more than the bound can show is wasted work: a character takes at most four bytes. A cut value then
        // reports its length in bytes, the only length known.
        var limit = Math.Min(utf8.Length, (maxLength + 1) * 4);
        var text = Encoding.UTF8.GetString(utf8[..limit]);
        return limit == utf8.Length ? Quote(text, maxLength) : Build(text, maxLength, utf8.Length, "bytes");
    }

    /// <summary>True for a character that <see cref="Quote(string?, int)"/> writes as an escape (a lone surrogate included).</summary>
    internal static bool NeedsEscaping(char c) =>
        c is '\\' or '\'' || char.IsControl(c) || char.IsSurrogate(c) || char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    private static bool NeedsEscaping(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
                continue;
            }

            if (NeedsEscaping(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Quotes, escapes and, when its escaped form exceeds the bound, cuts the value.</summary>
    private static string Build(string value, int maxLength, long fullLength, string unit)
    {
        // Cut only when the escaped whole does not fit; then keep what fits beside the "..." mark.
        var room = EscapedLength(value, maxLength + 1) <= maxLength && fullLength == value.Length ? maxLength : maxLength - 3;
        var builder = new StringBuilder(Math.Min(value.Length, maxLength) + 24);
        builder.Append('\'');
        var written = 0;
        var cut = fullLength != value.Length;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]);
            var width = pair ? 2 : EscapedWidth(c);
            if (written + width > room)
            {
                cut = true;
                break;
            }

            if (pair)
            {
                builder.Append(c).Append(value[i + 1]);
                i++;
            }
            else
            {
                AppendEscaped(builder, c);
            }

            written += width;
        }

        if (!cut)
        {
            return builder.Append('\'').ToString();
        }

        return builder.Append("...' (").Append(fullLength.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(unit).Append(')').ToString();
    }

    /// <summary>The length of the escaped value, counted up to <paramref name="stopAt"/>.</summary>
    private static int EscapedLength(string value, int stopAt)
    {
        var width = 0;
        for (var i = 0; i < value.Length && width < stopAt; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                width += 2;
                i++;
            }
            else
            {
                width += EscapedWidth(c);
            }
        }

        return width;
    }

    private static int EscapedWidth(char c) => !NeedsEscaping(c) ? 1 : c is '\\' or '\'' or '\0' or '\t' or '\n' or '\r' or '\u001B' ? 2 : 6;

    private static void AppendEscaped(StringBuilder builder, char c)
    {
        switch (c)
        {
            case '\\':
                builder.Append(@"\\");
                break;
            case '\'':
                builder.Append(@"\'");
                break;
            case '\0':
                builder.Append(@"\0");
                break;
            case '\t':
                builder.Append(@"\t");
                break;
            case '\n':
                builder.Append(@"\n");
                break;
            case '\r':
                builder.Append(@"\r");
                break;
            case '\u001B':
                builder.Append(@"\e");
                break;
            default:
                if (NeedsEscaping(c))
                {
                    builder.Append(@"\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                }
                else
                {
                    builder.Append(c);
                }

                break;
        }
    }
}
