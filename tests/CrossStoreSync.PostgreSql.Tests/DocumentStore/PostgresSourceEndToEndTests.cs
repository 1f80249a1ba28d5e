using System.Globalization;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>The PostgreSQL document store as the engine's source of truth, with SQLite vector and graph replicas.</summary>
public sealed class PostgresSourceEndToEndTests(DocumentStoreDatabase database) : IClassFixture<DocumentStoreDatabase>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static SyncEntity Item(int i, string text = "v1") => new(
        new EntityKey("items", "e-" + i.ToString("D4", CultureInfo.InvariantCulture)),
        Encoding.UTF8.GetBytes($$"""{"i":{{i}},"text":"{{text}}","price":{{i}}.50,"tags":["a","b"]}"""),
        new float[] { (i % 5) + 1, 1, 0.5f, i % 3 },
        [new SyncEdge("NEXT", new EntityKey("items", "e-" + (i + 1).ToString("D4", CultureInfo.InvariantCulture)), Encoding.UTF8.GetBytes("{\"w\": 1.0}"))]);

    [Fact]
    public async Task Writes_land_in_postgres_flow_to_sqlite_replicas_and_a_deep_check_finds_no_difference()
    {
        await using var host = await PostgresSourceEngine.StartAsync(database);
        var manager = host.Engine.Manager;
        var entities = Enumerable.Range(0, 400).Select(i => Item(i)).ToArray();

        await manager.WriteBatchAsync(entities);
        await manager.WriteAsync(Item(5, "v2"));
        var ticket = await manager.DeleteAsync(entities[7].Key);
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(ticket, Wait));

        Assert.Equal(399, await host.Source.CountAsync("items", CancellationToken.None));
        var read = await host.Source.ReadAsync(entities[5].Key, CancellationToken.None);
        Assert.Equal(Item(5, "v2").Document.ToArray(), read!.Entity.Document.ToArray());
        Assert.Equal(399L, await database.ScalarAsync($"SELECT count(*) FROM {host.Source.TableOf("items")} WHERE NOT deleted AND document ? 'price'"));

        var vectors = host.Engine.Services.GetRequiredService<SqliteVectorStore>();
        var graph = host.Engine.Services.GetRequiredService<SqliteGraphStore>();
        Assert.Equal(399, await vectors.CountAsync("items", CancellationToken.None));
        Assert.Equal(entities[4].Key, Assert.Single(await graph.GetNeighborsAsync(entities[3].Key, "NEXT", EdgeDirection.Outgoing, CancellationToken.None)).Key);

        var report = await host.Engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
        Assert.Equal("pg-documents", report.Source);
        Assert.Equal(399, report.SourceEntities);
        Assert.All(report.Stores, s => Assert.Equal(399, s.Consistent));
    }

    [Fact]
    public async Task A_write_postgres_rejects_reaches_no_replica_and_the_caller_sees_the_error()
    {
        await using var host = await PostgresSourceEngine.StartAsync(database);
        var manager = host.Engine.Manager;
        var good = await manager.WriteAsync(Item(1));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(good, Wait));

        // jsonb cannot hold U+0000; the core validator accepts it, PostgreSQL rejects the write permanently.
        var bad = new SyncEntity(new EntityKey("items", "nul"), Encoding.UTF8.GetBytes("{\"a\":\"\\u0000\"}"), new float[] { 1, 2, 3, 4 });
        var rejected = await Assert.ThrowsAsync<CrossStoreSync.Errors.SyncWriteRejectedException>(async () => await manager.WriteAsync(bad));
        Assert.Contains("22P05", rejected.InnerException?.Message ?? rejected.Message, StringComparison.Ordinal);

        var after = await manager.WriteAsync(Item(2));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(after, Wait));
        var vectors = host.Engine.Services.GetRequiredService<SqliteVectorStore>();
        Assert.Empty(await vectors.ReadDigestsAsync("items", ["nul"], CancellationToken.None));
        Assert.Equal(2, await vectors.CountAsync("items", CancellationToken.None));
        Assert.Null(await host.Source.ReadAsync(bad.Key, CancellationToken.None));
    }
}
