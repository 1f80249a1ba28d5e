using System.Text;
using CrossStoreSync.Configuration;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Validation;

/// <summary>Bad input fails with an <see cref="ArgumentException"/> naming the field and value, before anything is written anywhere.</summary>
public sealed class WriteValidationTests
{
    private static readonly EntityKey Key = Items.Key("k");

    [Fact]
    public async Task Empty_or_oversized_id_is_rejected_before_an_entity_can_even_be_built()
    {
        await using var engine = await TestEngine.StartAsync();

        var empty = Assert.Throws<ArgumentException>(() => Items.Entity(""));
        Assert.Equal("id", empty.ParamName);

        var oversized = Assert.Throws<ArgumentException>(() => Items.Entity(new string('x', 513)));
        Assert.Equal("id", oversized.ParamName);
        Assert.Contains("513 UTF-8 bytes", oversized.Message, StringComparison.Ordinal);
        Assert.Contains(new string('x', 77) + "...", oversized.Message, StringComparison.Ordinal);

        // Nor can a default key slip through as an entity.
        Assert.Throws<ArgumentException>(() => SyncEntity.FromJson(default, "{}"));
        Assert.Equal(0, engine.Log.Count);
    }

    [Fact]
    public async Task Collection_that_is_not_configured_is_rejected()
    {
        var entity = SyncEntity.FromJson(new EntityKey("unknown", "x"), "{}");
        await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity", "'unknown'", "AddCollection");
        await AssertRejectedAsync(null, m => m.DeleteAsync(new EntityKey("unknown", "x")).AsTask(), "key", "'unknown'");
    }

    [Fact]
    public async Task Default_key_is_rejected_by_delete()
    {
        await AssertRejectedAsync(null, m => m.DeleteAsync(default).AsTask(), "key", "not default");
    }

    [Theory]
    [InlineData(float.NaN, 2, "NaN")]
    [InlineData(float.PositiveInfinity, 0, null)]
    [InlineData(float.NegativeInfinity, 3, null)]
    public async Task Non_finite_vector_component_is_rejected_naming_its_index(float value, int index, string? shown)
    {
        var vector = new float[] { 1, 2, 3, 4 };
        vector[index] = value;
        var entity = SyncEntity.FromJson(Key, "{}", vector);

        var ex = await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity.Vector", $"at index {index}", "items/k", "finite");
        if (shown is not null)
        {
            Assert.Contains(shown, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Vector_of_the_wrong_dimension_is_rejected_with_both_dimensions()
    {
        var entity = SyncEntity.FromJson(Key, "{}", new float[] { 1, 2, 3 });
        await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity.Vector", "dimension 3", "expects 4");
    }

    [Fact]
    public async Task Vector_in_a_collection_without_vectors_is_rejected()
    {
        var entity = SyncEntity.FromJson(new EntityKey("plain", "p"), "{}", new float[] { 1 });
        await AssertRejectedAsync(o => o.AddCollection("plain"), m => m.WriteAsync(entity).AsTask(), "entity.Vector", "'plain'", "without vectors");
    }

    [Theory]
    [InlineData("[1,2]", "StartArray", "[1,2]")]
    [InlineData("\"text\"", "String", "\"text\"")]
    [InlineData("42", "Number", "42")]
    [InlineData("{\"a\":", "not valid JSON", "{\"a\":")]
    [InlineData("{\"a\" 1}", "not valid JSON", "{\"a\" 1}")]
    [InlineData("{} x", "items/k", "Document")]
    [InlineData("{}{}", "items/k", "Document")]
    [InlineData("", "empty", "items/k")]
    public async Task Document_that_is_not_one_json_object_is_rejected(string json, string expected, string alsoExpected)
    {
        var entity = SyncEntity.FromJson(Key, json, new float[] { 1, 2, 3, 4 });
        await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity.Document", expected, alsoExpected);
    }

    [Fact]
    public async Task Invalid_utf8_document_is_rejected()
    {
        var entity = new SyncEntity(Key, new byte[] { (byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}' });
        await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity.Document", "invalid UTF-8 at byte 2", "items/k");
    }

    [Fact]
    public async Task Document_over_MaxDocumentBytes_is_rejected_with_its_size_and_the_limit()
    {
        var json = "{\"t\":\"" + new string('x', 100) + "\"}"; // 108 bytes
        var entity = SyncEntity.FromJson(Key, json);
        await AssertRejectedAsync(o => o.MaxDocumentBytes = 100, m => m.WriteAsync(entity).AsTask(), "entity.Document", "108 bytes", "MaxDocumentBytes");
    }

    [Fact]
    public async Task Entity_over_MaxEntityBytes_is_rejected_with_its_size_and_the_limit()
    {
        var edges = Enumerable.Range(0, 3).Select(i => new SyncEdge("KNOWS", Items.Key($"t{i}"), Encoding.UTF8.GetBytes("{\"w\":\"" + new string('p', 40) + "\"}"))).ToArray();
        var entity = SyncEntity.FromJson(Key, "{\"a\":1}", new float[] { 1, 2, 3, 4 }, edges);
        await AssertRejectedAsync(o => { o.MaxDocumentBytes = 100; o.MaxEntityBytes = 120; }, m => m.WriteAsync(entity).AsTask(), "entity", "MaxEntityBytes", "bytes in all");
    }

    [Fact]
    public async Task Too_many_edges_are_rejected_with_the_count_and_the_limit()
    {
        var edges = Enumerable.Range(0, 4).Select(i => new SyncEdge("KNOWS", Items.Key($"t{i}"))).ToArray();
        var entity = SyncEntity.FromJson(Key, "{}", edges: edges);
        await AssertRejectedAsync(o => o.MaxEdgesPerEntity = 3, m => m.WriteAsync(entity).AsTask(), "entity.Edges", "4 edges", "MaxEdgesPerEntity");
    }

    [Fact]
    public async Task Edge_properties_that_are_not_a_json_object_are_rejected_naming_the_edge()
    {
        var edges = new[] { new SyncEdge("KNOWS", Items.Key("t0")), new SyncEdge("KNOWS", Items.Key("t1"), "[1]"u8.ToArray()) };
        var entity = SyncEntity.FromJson(Key, "{}", edges: edges);
        await AssertRejectedAsync(null, m => m.WriteAsync(entity).AsTask(), "entity.Edges[1].Properties", "edge 1", "[1]");
    }

    [Fact]
    public async Task Batch_with_a_repeated_key_is_rejected_naming_the_key_and_index()
    {
        var batch = new[] { Items.Entity("a"), Items.Entity("b"), Items.Entity("a", 2) };
        await AssertRejectedAsync(null, m => m.WriteBatchAsync(batch).AsTask(), "entities[2]", "'items/a'", "index 2");
    }

    [Fact]
    public async Task Batch_with_one_invalid_entity_is_rejected_as_a_whole_naming_its_index()
    {
        var batch = new[] { Items.Entity("a"), SyncEntity.FromJson(Items.Key("b"), "[]") };
        await AssertRejectedAsync(null, m => m.WriteBatchAsync(batch).AsTask(), "entities[1].Document", "items/b");
    }

    [Fact]
    public async Task Empty_batch_is_rejected()
    {
        await AssertRejectedAsync(null, m => m.WriteBatchAsync([]).AsTask(), "entities", "empty");
    }

    [Fact]
    public async Task Batch_over_MaxWriteBatchSize_is_rejected_with_the_limit()
    {
        var batch = Enumerable.Range(0, 4).Select(i => Items.Entity($"e{i}")).ToArray();
        await AssertRejectedAsync(o => o.MaxWriteBatchSize = 3, m => m.WriteBatchAsync(batch).AsTask(), "entities", "4 entities", "MaxWriteBatchSize");
    }

    private static async Task<ArgumentException> AssertRejectedAsync(Action<CrossStoreSyncOptions>? configure, Func<ISyncManager, Task> act, string param, params string[] expected)
    {
        await using var engine = await TestEngine.StartAsync(configure);

        var ex = await Assert.ThrowsAnyAsync<ArgumentException>(() => act(engine.Manager));

        Assert.Equal(param, ex.ParamName);
        foreach (var fragment in expected)
        {
            Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(0, engine.Log.Count);
        foreach (var store in engine.AllStores)
        {
            Assert.Equal(0, await store.CountAsync(Items.Collection, CancellationToken.None));
        }

        Assert.Equal(0, engine.SourceFaults.Calls + engine.VectorFaults.Calls + engine.GraphFaults.Calls);
        return ex;
    }
}
