using System.Text;
using System.Text.Json;
using CrossStoreSync.SurrealDb.Internal;

namespace CrossStoreSync.SurrealDb.Tests.Internal;

public sealed class RecordIdParserTests
{
    [Theory]
    [InlineData("doc:r1", "doc", "r1")]
    [InlineData("doc:42", "doc", "42")]
    [InlineData("doc:-7", "doc", "-7")]
    [InlineData("doc:`e1-abc`", "doc", "e1-abc")] // 3.x
    [InlineData("doc:`42`", "doc", "42")] // 3.x all-digit string key
    [InlineData("doc:⟨e1-abc⟩", "doc", "e1-abc")] // 2.x
    [InlineData("doc:⟨42⟩", "doc", "42")]
    [InlineData("doc:⟨a:b⟩", "doc", "a:b")]
    [InlineData("doc:⟨with space⟩", "doc", "with space")]
    [InlineData("doc:⟨a\\⟩b⟩", "doc", "a⟩b")]
    [InlineData("doc:`a\\`b\\\\c`", "doc", "a`b\\c")]
    [InlineData("doc:`ünïcødé-日本語-🙂`", "doc", "ünïcødé-日本語-🙂")]
    [InlineData("doc:⟨ünïcødé-日本語-🙂⟩", "doc", "ünïcødé-日本語-🙂")]
    [InlineData("doc:u'0190bd45-1d5b-7000-8000-000000000000'", "doc", "0190bd45-1d5b-7000-8000-000000000000")]
    [InlineData("doc:u\"0190bd45-1d5b-7000-8000-000000000000\"", "doc", "0190bd45-1d5b-7000-8000-000000000000")]
    [InlineData("`my table`:x", "my table", "x")]
    [InlineData("⟨my table⟩:⟨x y⟩", "my table", "x y")]
    public void Rendered_record_ids_of_both_versions_parse(string text, string table, string key)
    {
        Assert.True(RecordIdParser.TryParse(text, out var t, out var k), text);
        Assert.Equal(table, t);
        Assert.Equal(key, k);
    }

    [Theory]
    [InlineData("doc")]
    [InlineData("doc:")]
    [InlineData(":x")]
    [InlineData("doc:`open")]
    [InlineData("doc:⟨open")]
    [InlineData("doc:a b")]
    [InlineData("doc:u'not-a-uuid'")]
    [InlineData("doc:-")]
    public void Malformed_record_ids_do_not_parse(string text) => Assert.False(RecordIdParser.TryParse(text, out _, out _));
}

public sealed class SurrealQlTests
{
    [Theory]
    [InlineData("plain", "\"plain\"")]
    [InlineData("quote\"back\\slash", "\"quote\\\"back\\\\slash\"")]
    [InlineData("\"; DELETE items; --", "\"\\\"; DELETE items; --\"")]
    [InlineData("line\nbreak\ttab\r", "\"line\\nbreak\\ttab\\r\"")]
    [InlineData("\u0001", "\"\\u0001\"")]
    [InlineData("日本🙂", "\"日本🙂\"")]
    public void Strings_are_escaped_so_no_input_ends_the_literal(string value, string expected) =>
        Assert.Equal(expected, SurrealQl.String(new StringBuilder(), value).ToString());

    [Fact]
    public void Json_documents_become_literals_with_every_string_escaped()
    {
        var json = """{ "a": [1, 2.50, -3e2, true, null], "b\"": { "c": "x\"; DROP" }, "big": 123456789012345678901234 }"""u8;
        var sql = SurrealQl.Json(new StringBuilder(), json).ToString();
        Assert.Equal("{\"a\":[1,2.50,-3e2f,true,NULL],\"b\\\"\":{\"c\":\"x\\\"; DROP\"},\"big\":123456789012345678901234dec}", sql);
    }

    [Fact]
    public void Invalid_json_is_rejected() =>
        Assert.ThrowsAny<JsonException>(() => SurrealQl.Json(new StringBuilder(), "{\"a\":"u8));

    [Fact]
    public void Float_vectors_are_written_to_round_trip_and_stay_floats()
    {
        var sql = SurrealQl.Floats(new StringBuilder(), [0.1f, 1f, -2.5f, 3e-7f]).ToString();
        Assert.Equal("[0.1f,1f,-2.5f,3E-07f]", sql);
        Assert.Throws<ArgumentException>(() => SurrealQl.Floats(new StringBuilder(), [float.NaN]));
    }

    [Fact]
    public void Record_literals_escape_backticks_and_backslashes() =>
        Assert.Equal("`items`:`a\\`b\\\\c:d`", SurrealQl.RecordLiteral(new StringBuilder(), "items", "a`b\\c:d").ToString());

    [Fact]
    public void Table_names_other_than_identifiers_are_refused() =>
        Assert.Throws<ArgumentException>(() => SurrealQl.Table(new StringBuilder(), "items`; DELETE"));
}

public sealed class JsonEquivalenceTests
{
    [Theory]
    [InlineData("""{"a":1,"b":2}""", """{"b":2,"a":1}""")]
    [InlineData("""{"n":2.50}""", """{"n":2.5}""")]
    [InlineData("""{"n":1.0}""", """{"n":1}""")]
    [InlineData("""[1, {"x": [true, null]}]""", """[1,{"x":[true,null]}]""")]
    [InlineData("""{"a":1,"a":2}""", """{"a":2}""")]
    public void Same_meaning_is_equivalent(string a, string b) => Assert.True(Equivalent(a, b));

    [Theory]
    [InlineData("""{"a":1}""", """{"a":2}""")]
    [InlineData("""{"a":"1"}""", """{"a":1}""")]
    [InlineData("""{"a":1}""", """{"a":1,"b":null}""")]
    [InlineData("""[1,2]""", """[2,1]""")]
    [InlineData("""{"t":"hello"}""", """{"t":"edited"}""")]
    public void Different_meaning_is_not_equivalent(string a, string b) => Assert.False(Equivalent(a, b));

    private static bool Equivalent(string a, string b)
    {
        using var da = JsonDocument.Parse(a);
        using var db = JsonDocument.Parse(b);
        return JsonEquivalence.Equivalent(da.RootElement, db.RootElement);
    }
}

public sealed class OptionsValidationTests
{
    private static SurrealDbOptions Valid() => new() { Endpoint = new Uri("http://127.0.0.1:8000") };

    [Fact]
    public void Defaults_with_an_endpoint_are_valid() => Valid().Validate();

    public static TheoryData<Action<SurrealDbOptions>, string> Invalid => new()
    {
        { o => o.Endpoint = null, "Endpoint" },
        { o => o.Endpoint = new Uri("ftp://host"), "ftp://host" },
        { o => o.Namespace = " ", "Namespace" },
        { o => o.Database = "", "Database" },
        { o => o.StoreName = "", "StoreName" },
        { o => o.Username = "root", "Basic authentication needs both" },
        { o => (o.Username, o.Password, o.BearerToken) = ("root", "root", "jwt"), "choose one" },
        { o => o.AuthDatabase = "db", "AuthNamespace" },
        { o => o.RequestTimeout = TimeSpan.Zero, "RequestTimeout" },
        { o => o.TransientRetryAttempts = -1, "-1" },
        { o => o.MaxChangesPerRequest = 0, "MaxChangesPerRequest" },
        { o => o.ReadPageSize = 0, "ReadPageSize" },
        { o => o.ServerMajorVersion = 1, "ServerMajorVersion is 1" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_options_are_refused_with_the_bad_value(Action<SurrealDbOptions> change, string expected)
    {
        var options = Valid();
        change(options);
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
