using CrossStoreSync.Model;

namespace CrossStoreSync.Tests.Model;

public sealed class EntityKeyTests
{
    [Fact]
    public void Valid_key_keeps_its_parts_and_compares_ordinally()
    {
        var key = new EntityKey("items", "ключ 😀/ä");

        Assert.Equal("items", key.Collection);
        Assert.Equal("ключ 😀/ä", key.Id);
        Assert.Equal("items/ключ 😀/ä", key.ToString());
        Assert.Equal(new EntityKey("items", "ключ 😀/ä"), key);
        Assert.NotEqual(new EntityKey("items", "Ключ 😀/ä"), key);
        Assert.True(new EntityKey("a", "z") < new EntityKey("b", "a"));
        Assert.True(new EntityKey("a", "B") < new EntityKey("a", "a"));
        Assert.False(key.IsDefault);
        Assert.True(default(EntityKey).IsDefault);
    }

    [Fact]
    public void Empty_id_is_rejected_naming_the_id()
    {
        var ex = Assert.Throws<ArgumentException>(() => new EntityKey("items", ""));
        Assert.Equal("id", ex.ParamName);
        Assert.Contains("Id must be a non-empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Id_of_exactly_512_utf8_bytes_is_accepted_and_513_is_rejected_with_its_size()
    {
        _ = new EntityKey("items", new string('a', 512));
        _ = new EntityKey("items", new string('€', 170) + "aa"); // 170 × 3 + 2 = 512 bytes

        var tooLong = new string('€', 171); // 513 bytes in 171 characters
        var ex = Assert.Throws<ArgumentException>(() => new EntityKey("items", tooLong));
        Assert.Equal("id", ex.ParamName);
        Assert.Contains("513 UTF-8 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("512", ex.Message, StringComparison.Ordinal);

        // The value is quoted, shortened so that a huge id cannot flood the logs.
        Assert.Contains(new string('€', 77) + "...", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(tooLong, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a\u0001b", "U+0001", 1)]
    [InlineData("line\nbreak", "U+000A", 4)]
    [InlineData("\u007F", "U+007F", 0)]
    [InlineData("tab\tx", "U+0009", 3)]
    public void Control_character_is_rejected_naming_code_point_and_index(string id, string codePoint, int index)
    {
        var ex = Assert.Throws<ArgumentException>(() => new EntityKey("items", id));

        Assert.Equal("id", ex.ParamName);
        Assert.Contains(codePoint, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"index {index}", ex.Message, StringComparison.Ordinal);
        // Quoted escaped, so that the id cannot break the line it is logged on.
        Assert.Contains(global::CrossStoreSync.Errors.SafeText.Quote(id), ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(id, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unpaired_surrogate_is_rejected_naming_its_index()
    {
        // Built in code: lone surrogates do not survive xUnit's serialization of InlineData strings.
        var cases = new (string Id, int Index)[]
        {
            ("ab" + '\uD800', 2), // high surrogate at the end
            ('\uD800' + "x", 0), // high surrogate followed by a non-surrogate
            ("x" + '\uDC00', 1), // lone low surrogate
            (string.Concat('\uDC00', '\uD800'), 0), // pair in the wrong order
        };

        foreach (var (id, index) in cases)
        {
            var ex = Assert.Throws<ArgumentException>(() => new EntityKey("items", id));

            Assert.Equal("id", ex.ParamName);
            Assert.Contains("unpaired surrogate", ex.Message, StringComparison.Ordinal);
            Assert.Contains($"index {index}", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Paired_surrogates_are_accepted()
    {
        Assert.Equal("😀", new EntityKey("items", "😀").Id);
    }

    [Theory]
    [InlineData("1abc")]
    [InlineData("_abc")]
    [InlineData("has-dash")]
    [InlineData("has space")]
    [InlineData("ünïcode")]
    [InlineData("a.b")]
    public void Bad_collection_name_is_rejected_quoting_it(string collection)
    {
        var ex = Assert.Throws<ArgumentException>(() => new EntityKey(collection, "x"));

        Assert.Equal("collection", ex.ParamName);
        Assert.Contains($"'{collection}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_collection_is_rejected_naming_the_collection()
    {
        var ex = Assert.Throws<ArgumentException>(() => new EntityKey("", "x"));
        Assert.Equal("collection", ex.ParamName);
    }

    [Fact]
    public void Collection_of_64_characters_is_accepted_and_65_is_rejected()
    {
        var longest = "C" + new string('c', 63);
        Assert.Equal(longest, new EntityKey(longest, "x").Collection);

        var ex = Assert.Throws<ArgumentException>(() => new EntityKey(longest + "c", "x"));
        Assert.Contains("at most 64", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Edge_type_must_be_an_identifier_and_target_must_be_a_real_key()
    {
        var typeError = Assert.Throws<ArgumentException>(() => new SyncEdge("HAS-DASH", new EntityKey("items", "x")));
        Assert.Equal("type", typeError.ParamName);
        Assert.Contains("'HAS-DASH'", typeError.Message, StringComparison.Ordinal);

        var targetError = Assert.Throws<ArgumentException>(() => new SyncEdge("KNOWS", default));
        Assert.Equal("target", targetError.ParamName);
    }
}
