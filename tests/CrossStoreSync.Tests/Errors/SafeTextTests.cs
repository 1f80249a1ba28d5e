using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;

namespace CrossStoreSync.Tests.Errors;

public sealed class SafeTextTests
{
    [Fact]
    public void Id_with_a_line_feed_cannot_forge_a_log_line()
    {
        var quoted = SafeText.Quote("x\n2030-01-01 ERROR forged");

        Assert.Equal(@"'x\n2030-01-01 ERROR forged'", quoted);
        Assert.DoesNotContain('\n', quoted);
    }

    [Theory]
    [InlineData("a\0b", @"'a\0b'")]
    [InlineData("a\rb", @"'a\rb'")]
    [InlineData("a\r\nb", @"'a\r\nb'")]
    [InlineData("a\tb", @"'a\tb'")]
    [InlineData("a\u001B[31mred", @"'a\e[31mred'")]
    [InlineData("a\u007Fb", @"'a\u007Fb'")]
    [InlineData("a\u0085b", @"'a\u0085b'")]
    [InlineData("a\u2028b", @"'a\u2028b'")]
    [InlineData("a\u2029b", @"'a\u2029b'")]
    [InlineData("a\u202Eb", @"'a\u202Eb'")]
    [InlineData("a\u202Ab\u202Bc\u202Cd\u202De", @"'a\u202Ab\u202Bc\u202Cd\u202De'")]
    [InlineData("a\u2066b\u2067c\u2068d\u2069e", @"'a\u2066b\u2067c\u2068d\u2069e'")]
    [InlineData("a\u200Eb\u200Fc\u061Cd", @"'a\u200Eb\u200Fc\u061Cd'")]
    [InlineData("zero\u200Bwidth\uFEFF", @"'zero\u200Bwidth\uFEFF'")]
    [InlineData("it's", @"'it\'s'")]
    [InlineData(@"C:\path", @"'C:\\path'")]
    public void Control_separator_and_bidi_characters_are_escaped(string value, string expected) =>
        Assert.Equal(expected, SafeText.Quote(value));

    [Fact]
    public void Unpaired_surrogates_are_escaped_and_pairs_kept()
    {
        Assert.Equal(@"'a\uD800b'", SafeText.Quote("a\uD800b"));
        Assert.Equal(@"'a\uDC00'", SafeText.Quote("a\uDC00"));
        Assert.Equal("'a😀b'", SafeText.Quote("a😀b"));
    }

    [Fact]
    public void Ordinary_text_of_every_script_is_kept_as_it_is()
    {
        Assert.Equal("'ключ ä 日本 عربى'", SafeText.Quote("ключ ä 日本 عربى"));
        Assert.Equal("'notes/n-1'", SafeText.Quote(new EntityKey("notes", "n-1")));
        Assert.Equal("null", SafeText.Quote((string?)null));
        Assert.Equal("(no key)", SafeText.Quote(default(EntityKey)));
        Assert.Equal("''", SafeText.Quote(string.Empty));
    }

    [Fact]
    public void Long_values_are_cut_within_the_bound_and_say_how_long_they_were()
    {
        var quoted = SafeText.Quote(new string('a', 5000), 20);

        Assert.Equal("'" + new string('a', 17) + "...' (5000 chars)", quoted);
        Assert.Equal("'" + new string('a', 20) + "'", SafeText.Quote(new string('a', 20), 20));
        Assert.Equal("'" + new string('a', 17) + "...' (21 chars)", SafeText.Quote(new string('a', 21), 20));
    }

    [Fact]
    public void A_cut_never_splits_an_escape_or_a_surrogate_pair()
    {
        // Room for seven characters beside the mark: an escape or a surrogate pair that would straddle it is left out whole.
        Assert.Equal("'aaaaaa...' (10 chars)", SafeText.Quote("aaaaaa\nbbb", 10));
        Assert.Equal("'aaaaaa...' (11 chars)", SafeText.Quote("aaaaaa😀abc", 10));
        Assert.Equal(@"'aaaaaa\nbb'", SafeText.Quote("aaaaaa\nbb", 10));
        Assert.Equal(@"'\u202E...' (5 chars)", SafeText.Quote("\u202E\u202E\u202E\u202E\u202E", 13));
    }

    [Fact]
    public void Utf8_previews_are_decoded_escaped_and_bounded_in_bytes()
    {
        Assert.Equal(@"'{""a"":""x\ny""}'", SafeText.QuoteUtf8(Encoding.UTF8.GetBytes("{\"a\":\"x\ny\"}")));
        Assert.Equal("'\uFFFD'", SafeText.QuoteUtf8([0xFF]));
        var quoted = SafeText.QuoteUtf8(Encoding.UTF8.GetBytes(new string('z', 10_000)), 16);
        Assert.Equal("'" + new string('z', 13) + "...' (10000 bytes)", quoted);
    }

    [Fact]
    public void Bound_below_the_minimum_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeText.Quote("x", 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeText.QuoteUtf8("x"u8, 0));
    }

    [Fact]
    public void Every_character_a_terminal_or_log_reader_treats_specially_is_escaped()
    {
        for (var c = 0; c <= 0xFFFF; c++)
        {
            var ch = (char)c;
            var special = char.IsControl(ch) || char.IsSurrogate(ch)
                || char.GetUnicodeCategory(ch) is System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator;
            var quoted = SafeText.Quote("a" + ch + "b");
            if (special)
            {
                Assert.DoesNotContain(ch, quoted);
            }
        }
    }
}
