using System.Globalization;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.ChangeFeed;
using CrossStoreSync.SurrealDb.Stores;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.SurrealDb.Tests.Support;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>Writes made directly in SurrealDB by other programs reach the replicas through the change feed.</summary>
[Collection(SurrealDbCollection.Name)]
public sealed class ChangeFeedTests(SurrealDbHost host) : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static SyncEntity Item(int i) => new(
        new EntityKey("items", "e-" + i.ToString("D4", CultureInfo.InvariantCulture)),
        Encoding.UTF8.GetBytes($$"""{"i":{{i}},"text":"v1"}"""),
        new float[] { i + 1, 1, 0, 0 },
        [new SyncEdge("NEXT", new EntityKey("items", "e-" + (i + 1).ToString("D4", CultureInfo.InvariantCulture)))]);

    private Task<TestEngine> StartAsync(SurrealDbOptions surreal, bool hostedFeed = false) => TestEngine.StartAsync(b =>
    {
        b.UseSqlite(o =>
        {
            o.DirectoryPath = _dir.Path;
            o.Durable = false;
        });
        b.AddSurrealDbDocumentStore(o =>
        {
            o.Endpoint = surreal.Endpoint;
            o.Namespace = surreal.Namespace;
            o.Database = surreal.Database;
        });
        if (hostedFeed)
        {
            b.AddSurrealDbChangeFeed(o => o.PollInterval = TimeSpan.FromMilliseconds(50));
        }
    });

    private static SurrealDbChangeFeed NewFeed(TestEngine engine) => new(
        engine.Services.GetRequiredService<SurrealDbDocumentStore>(),
        engine.Manager,
        ["items"],
        new SurrealDbChangeFeedOptions());

    [Fact]
    public async Task Writes_made_directly_in_SurrealDB_reach_the_replicas_and_the_library_s_own_writes_are_not_echoed()
    {
        var options = host.NewDatabaseOptions();
        await using var engine = await StartAsync(options);
        var entities = Enumerable.Range(0, 10).Select(Item).ToArray();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(await engine.Manager.WriteBatchAsync(entities), Wait));
        using var feed = NewFeed(engine);
        Assert.Equal(0, (await feed.PollAsync(CancellationToken.None)).Written);

        await host.SqlAsync(options, """
            CREATE items:foreign1 CONTENT { data: { title: "from another program", when: "2024-01-01T00:00:00Z" }, vector: [1.0, 2.0, 3.0, 4.0], edges: [{ type: "NEXT", collection: "items", id: "e-0001" }] };
            CREATE items:plain CONTENT { name: "no data wrapper", vector: [0.0, 0.0, 1.0, 0.0] };
            UPDATE items:`e-0003` SET data.text = "edited elsewhere", vector = [4.0, 3.0, 2.0, 1.0];
            DELETE items:`e-0005`;
            """);
        var poll = await feed.PollAsync(CancellationToken.None);

        Assert.Equal(4, poll.Written);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(poll.Ticket!.Value, Wait));
        var source = engine.Services.GetRequiredService<SurrealDbDocumentStore>();
        var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
        var foreign = await source.ReadAsync(new EntityKey("items", "foreign1"), CancellationToken.None);
        Assert.Equal("""{"title":"from another program","when":"2024-01-01T00:00:00Z"}""", foreign!.Entity.DocumentText);
        Assert.Equal("""{"name":"no data wrapper"}""", (await source.ReadAsync(new EntityKey("items", "plain"), CancellationToken.None))!.Entity.DocumentText);
        var edited = (await source.ReadAsync(entities[3].Key, CancellationToken.None))!.Entity;
        Assert.Contains("edited elsewhere", edited.DocumentText, StringComparison.Ordinal);
        var replica = Assert.Single(await vectors.ReadDigestsAsync("items", [entities[3].Key.Id], CancellationToken.None));
        Assert.Equal(ProjectionHash.Compute(edited, StoreKind.Vector), replica.ProjectionHash);
        Assert.Empty(await vectors.ReadDigestsAsync("items", [entities[5].Key.Id], CancellationToken.None));
        Assert.Equal(11, await vectors.CountAsync("items", CancellationToken.None));

        // The engine's own rewrite of those records shows up in the feed and is recognised as its own.
        Assert.Equal(0, (await feed.PollAsync(CancellationToken.None)).Written);
        var report = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
    }

    [Fact]
    public async Task The_feed_position_is_durable_so_a_new_feed_resumes_after_it()
    {
        var options = host.NewDatabaseOptions();
        await using var engine = await StartAsync(options);
        using (var first = NewFeed(engine))
        {
            Assert.Equal(0, (await first.PollAsync(CancellationToken.None)).Written); // switches the feed on
            await host.SqlAsync(options, "CREATE items:one CONTENT { data: { n: 1 }, vector: [1.0, 0.0, 0.0, 0.0] };");
            Assert.Equal(1, (await first.PollAsync(CancellationToken.None)).Written);
        }

        await host.SqlAsync(options, "CREATE items:two CONTENT { data: { n: 2 }, vector: [0.0, 1.0, 0.0, 0.0] };");
        using var restarted = NewFeed(engine);
        var poll = await restarted.PollAsync(CancellationToken.None);

        Assert.Equal(1, poll.Written);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(poll.Ticket!.Value, Wait));
        Assert.Equal(2, await engine.Services.GetRequiredService<SqliteVectorStore>().CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task The_hosted_feed_ingests_foreign_writes_on_its_own()
    {
        var options = host.NewDatabaseOptions();
        await using var engine = await StartAsync(options, hostedFeed: true);
        using var cts = new CancellationTokenSource(Wait);
        var events = engine.Manager.SubscribeAsync(cts.Token).GetAsyncEnumerator(cts.Token);

        await host.SqlAsync(options, "CREATE items:hosted CONTENT { data: { n: 1 }, vector: [1.0, 0.0, 0.0, 0.0] };");

        // Wait on the engine's own signal: the vector replica applied a batch.
        while (await events.MoveNextAsync())
        {
            if (events.Current is { Kind: SyncEventKind.Applied, Store: "vectors" })
            {
                break;
            }
        }

        await events.DisposeAsync();
        var digest = Assert.Single(await engine.Services.GetRequiredService<SqliteVectorStore>().ReadDigestsAsync("items", ["hosted"], CancellationToken.None));
        Assert.Equal("hosted", digest.Key.Id);
    }

    [Fact]
    public void Invalid_feed_options_are_refused_with_the_bad_value()
    {
        var options = new SurrealDbChangeFeedOptions { BatchSize = 0 };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("BatchSize is 0", error.Message, StringComparison.Ordinal);
    }
}
