using System.Text;
using System.Text.Json;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Internal;
using CrossStoreSync.SurrealDb.Tests.Support;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>Ids and strings that SurrealDB could mistake for syntax or other types, against the real engine.</summary>
[Collection(SurrealDbCollection.Name)]
public sealed class RoundTripTests(SurrealDbHost host)
{
    private static readonly HlcTimestamp V1 = new(1_700_000_000_000, 0, 1);
    private static readonly CollectionDefinition[] Collections = [new("items", 2, VectorDistance.Cosine)];

    private async Task<(Stores.SurrealDbDocumentStore Store, SurrealDbOptions Options)> NewStoreAsync(Action<SurrealDbOptions>? configure = null)
    {
        var options = host.NewDatabaseOptions();
        configure?.Invoke(options);
        var store = host.NewStore(options);
        await store.InitializeAsync(Collections, CancellationToken.None);
        return (store, options);
    }

    private static string Record(string id)
    {
        var sql = new StringBuilder("type::record(\"items\",");
        return SurrealQl.String(sql, id).Append(')').ToString();
    }

    [Theory]
    [InlineData("with-dash")]
    [InlineData("a:b")]
    [InlineData("items:abc")]
    [InlineData("with space")]
    [InlineData("ünïcødé-日本語-🙂")]
    [InlineData("0123456789")]
    [InlineData("42")]
    [InlineData("-7")]
    [InlineData("tick`and\\slash")]
    [InlineData("angle⟩bracket⟨")]
    [InlineData("0190bd45-1d5b-7000-8000-000000000000")]
    [InlineData("\"); DELETE items; --")]
    public async Task Ids_round_trip_exactly_and_are_stored_as_string_keys(string id)
    {
        var (store, options) = await NewStoreAsync();
        var entity = SyncEntity.FromJson(new EntityKey("items", id), """{"text":"x"}""", new float[] { 1, 2 });
        var neighbour = SyncEntity.FromJson(new EntityKey("items", "neighbour"), """{"text":"y"}""");
        await store.ApplyAsync([EntityChange.Upsert(entity, V1), EntityChange.Upsert(neighbour, V1)], CancellationToken.None);

        var read = await store.ReadAsync(entity.Key, CancellationToken.None);
        Assert.NotNull(read);
        Assert.Equal(id, read.Entity.Key.Id);
        Assert.Equal(entity.Document.ToArray(), read.Entity.Document.ToArray());
        Assert.Contains(id, (await store.ScanAsync("items", null, 10, CancellationToken.None)).Select(e => e.Entity.Key.Id));
        Assert.Contains(id, (await store.ScanBucketsAsync("items", BucketRange.All, null, 10, CancellationToken.None)).Select(e => e.Entity.Key.Id));
        Assert.Equal(id, Assert.Single(await store.ReadDigestsAsync("items", [id], CancellationToken.None)).Key.Id);
        Assert.Equal(2, await store.CountAsync("items", CancellationToken.None));

        // Directly in SurrealDB: the key is a string, whatever it looks like.
        var items = await host.SqlAsync(options, $"RETURN type::of(record::id({Record(id)})); RETURN record::id({Record(id)});");
        Assert.Equal("string", items[0].GetProperty("result").GetString());
        Assert.Equal(id, items[1].GetProperty("result").GetString());
    }

    [Fact]
    public async Task Paging_after_an_unusual_id_continues_after_it()
    {
        var (store, _) = await NewStoreAsync();
        string[] ids = ["a", "a:b", "a`b", "a b", "b", "b\\c", "z🙂"];
        await store.ApplyAsync(ids.Select(id => EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), "{}"), V1)).ToArray(), CancellationToken.None);

        var seen = new List<string>();
        string? after = null;
        while (await store.ScanAsync("items", after, 1, CancellationToken.None) is { Count: > 0 } page)
        {
            seen.Add(page[0].Entity.Key.Id);
            after = page[0].Entity.Key.Id;
        }

        Assert.Equal(ids.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.Equal(ids.Length, seen.Distinct().Count());
    }

    [Fact]
    public async Task Strings_that_look_like_record_ids_datetimes_or_uuids_stay_strings()
    {
        var (store, options) = await NewStoreAsync();
        const string json = """
            {"ref":"items:abc","pair":"a:b","when":"2024-01-01T00:00:00Z","precise":"2024-01-01T00:00:00.123456789+02:00",
             "uuid":"0190bd45-1d5b-7000-8000-000000000000","duration":"1h30m","decimal":"1.5dec","number":"42",
             "escaped":"doc:⟨x⟩","nested":{"list":["items:`y`","u'0190bd45-1d5b-7000-8000-000000000000'"]}}
            """;
        var entity = SyncEntity.FromJson(new EntityKey("items", "trap"), json);
        var change = EntityChange.Upsert(entity, V1);
        await store.ApplyAsync([change], CancellationToken.None);

        var read = await store.ReadAsync(entity.Key, CancellationToken.None);
        Assert.Equal(json, read!.Entity.DocumentText);
        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["trap"], CancellationToken.None));
        Assert.Equal(ProjectionHash.Compute(entity, StoreKind.Document), digest.ProjectionHash);

        // The native object in SurrealDB holds strings, not records, datetimes or uuids.
        var items = await host.SqlAsync(options, $"""
            SELECT VALUE [type::of(data.ref), type::of(data.pair), type::of(data.when), type::of(data.precise), type::of(data.uuid),
                          type::of(data.duration), type::of(data.decimal), type::of(data.number), type::of(data.nested.list[0])]
            FROM ONLY {Record("trap")};
            """);
        Assert.All(items[0].GetProperty("result").EnumerateArray(), t => Assert.Equal("string", t.GetString()));
    }

    [Fact]
    public async Task The_JSON_RPC_string_coercion_trap_exists_which_is_why_the_store_sends_literals()
    {
        // PROTOCOLS.md §3.3: JSON parameters of /rpc are parsed with "legacy strands". The store never uses them.
        var options = host.NewDatabaseOptions();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Endpoint!, "rpc"))
        {
            Content = new StringContent("""{"id":1,"method":"query","params":["RETURN [type::of($a), type::of($b), type::of($c)]",{"a":"a:b","b":"2024-01-01T00:00:00Z","c":"plain"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Surreal-NS", options.Namespace);
        request.Headers.Add("Surreal-DB", options.Database);
        using var response = await host.Http.SendAsync(request);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        var types = body.RootElement.GetProperty("result")[0].GetProperty("result").EnumerateArray().Select(t => t.GetString()!).ToArray();
        Assert.Equal(["record", "datetime", "string"], types);
    }

    [Fact]
    public async Task Documents_are_native_objects_that_other_programs_can_query()
    {
        var (store, options) = await NewStoreAsync();
        await store.ApplyAsync(
        [
            EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "p1"), """{"name":"Ada","age":36,"tags":["math"]}"""), V1),
            EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "p2"), """{"name":"Alan","age":41,"tags":[]}"""), V1),
        ], CancellationToken.None);

        var items = await host.SqlAsync(options, "SELECT VALUE data.name FROM items WHERE data.age > 40;");
        Assert.Equal("Alan", Assert.Single(items[0].GetProperty("result").EnumerateArray()).GetString());
    }

    [Fact]
    public async Task Batches_larger_than_one_request_are_split_and_all_applied()
    {
        var (store, _) = await NewStoreAsync(o => o.MaxChangesPerRequest = 7);
        var changes = Enumerable.Range(0, 50).Select(i => EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "c" + i), $$"""{"i":{{i}}}"""), V1)).ToArray();

        await store.ApplyAsync(changes, CancellationToken.None);

        Assert.Equal(50, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_document_that_is_not_json_is_rejected_permanently_and_nothing_is_written()
    {
        // One change per request: the bad change is in the second request, which must not let the first go out.
        var (store, _) = await NewStoreAsync(o => o.MaxChangesPerRequest = 1);
        var good = EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", "good"), "{}"), V1);
        var bad = EntityChange.Upsert(new SyncEntity(new EntityKey("items", "bad"), Encoding.UTF8.GetBytes("{\"a\":")), V1);

        var error = await Assert.ThrowsAsync<Errors.SyncStoreException>(async () => await store.ApplyAsync([good, bad], CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Equal(bad.Key, error.Key);
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task Records_written_by_other_programs_without_sync_metadata_are_not_reported_as_entities()
    {
        var (store, options) = await NewStoreAsync();
        await host.SqlAsync(options, "CREATE items:foreign CONTENT { name: 'not ours' };");

        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
        Assert.Empty(await store.ScanAsync("items", null, 10, CancellationToken.None));
        Assert.Null(await store.ReadAsync(new EntityKey("items", "foreign"), CancellationToken.None));
    }
}
