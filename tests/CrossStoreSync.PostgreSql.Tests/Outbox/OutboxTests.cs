using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Log;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Outbox;

/// <summary>
/// PostgreSQL as source of truth and change log (<c>UsePostgreSql</c>): the document write and the log append commit in
/// one transaction, and SQLite vector + graph replicas follow the log.
/// </summary>
public sealed class OutboxTests() : DatabaseAndDirectory("csoutbox")
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private Task<EngineHost> StartAsync(string worker = "solo") =>
        EngineHost.StartAsync(
            b =>
            {
                b.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(Dir, "vectors.db"), "vectors"));
                b.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(Dir, "graph.db"), "graph"));
                b.UsePostgreSql(o =>
                    {
                        o.ConnectionString = Database.ConnectionString;
                        o.Partitions = 4;
                    })
                    .AddReplica("vectors", sp => sp.GetRequiredService<SqliteVectorStore>())
                    .AddReplica("graph", sp => sp.GetRequiredService<SqliteGraphStore>());
            },
            o => o.WorkerId = worker);

    private static SyncEntity Item(string id, int round = 0) =>
        new(new EntityKey("items", id), Encoding.UTF8.GetBytes($$"""{"round":{{round}}}"""), new float[] { 1, round, 2, 3 }, [new SyncEdge("LINKS", new EntityKey("items", id + "-peer"))]);

    private async Task<(long Documents, long Entries, long Head)> CountsAsync() => (
        (long)(await Database.ScalarAsync("SELECT count(*) FROM crossstoresync.doc_items"))!,
        (long)(await Database.ScalarAsync("SELECT count(*) FROM crossstoresync.log_entries"))!,
        (long)(await Database.ScalarAsync("SELECT last_lsn FROM crossstoresync.log_head"))!);

    [Fact]
    public async Task Writes_reach_the_replicas_and_a_deep_check_finds_no_difference()
    {
        await using var engine = await StartAsync();
        await engine.Manager.WriteBatchAsync([.. Enumerable.Range(0, 300).Select(i => Item($"e{i}"))]);
        await engine.Manager.WriteAsync(Item("e1", 2));
        var ticket = await engine.Manager.DeleteAsync(new EntityKey("items", "e2"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));

        var report = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
        Assert.Equal(299, report.SourceEntities);
        Assert.Equal((300L, 302L, 302L), await CountsAsync()); // 300 rows (one tombstone); 302 log entries, dense
    }

    [Fact]
    public async Task A_failure_after_the_document_write_but_before_the_append_leaves_neither()
    {
        await using var engine = await StartAsync();
        var first = await engine.Manager.WriteAsync(Item("ok"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(first, Wait));

        // The log insert fails for one key, after the same transaction wrote the document: both must vanish.
        await Database.ExecuteAsync("""
            CREATE FUNCTION crossstoresync.fail_append() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.id = 'poison' THEN RAISE EXCEPTION 'append refused for %', NEW.id USING ERRCODE = '23514'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER fail_append BEFORE INSERT ON crossstoresync.log_entries FOR EACH ROW EXECUTE FUNCTION crossstoresync.fail_append();
            """);
        var before = await CountsAsync();
        var error = await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteBatchAsync([Item("fine"), Item("poison")]));
        Assert.Contains("append refused for poison", error.Message);
        Assert.Equal(before, await CountsAsync());
        Assert.Null(await Database.ScalarAsync("SELECT id FROM crossstoresync.doc_items WHERE id IN ('fine', 'poison')"));

        // The log head was not consumed: the next write gets the next number, no gap.
        var next = await engine.Manager.WriteAsync(Item("after"));
        Assert.Equal(before.Head + 1, next.Lsns.First);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(next, Wait));
    }

    [Fact]
    public async Task A_document_the_source_rejects_is_never_appended()
    {
        await using var engine = await StartAsync();
        var before = await CountsAsync();

        // jsonb cannot hold U+0000: the document write fails inside the transaction, so no log entry exists either.
        var bad = new SyncEntity(new EntityKey("items", "nul"), Encoding.UTF8.GetBytes("{\"a\":\"\\u0000\"}"), new float[] { 1, 2, 3, 4 });
        await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteBatchAsync([Item("fine"), bad]));
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task A_feed_position_commits_with_its_changes_or_not_at_all()
    {
        await using var engine = await StartAsync();
        var feed = engine.Services.GetRequiredService<IChangeFeedWriter>();
        var ticket = await feed.WriteAsync([FeedChange.Upsert(Item("f1")), FeedChange.Delete(new EntityKey("items", "f0"))], new FeedPosition("pg/orders", "lsn=10;i=2"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));
        Assert.Equal("lsn=10;i=2", await feed.GetPositionAsync("pg/orders"));

        var bad = new SyncEntity(new EntityKey("items", "nul"), Encoding.UTF8.GetBytes("{\"a\":\"\\u0000\"}"), new float[] { 1, 2, 3, 4 });
        await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await feed.WriteAsync([FeedChange.Upsert(bad)], new FeedPosition("pg/orders", "lsn=11;i=0")));
        Assert.Equal("lsn=10;i=2", await feed.GetPositionAsync("pg/orders"));

        var badName = await Assert.ThrowsAsync<ArgumentException>(async () => await feed.SavePositionAsync(new FeedPosition("pg orders", "x")));
        Assert.Contains("'pg orders'", badName.Message);
    }

    [Fact]
    public async Task The_library_tables_live_in_one_schema_and_a_restart_resumes_from_the_saved_cursors()
    {
        SyncTicket ticket;
        await using (var engine = await StartAsync())
        {
            ticket = await engine.Manager.WriteBatchAsync([.. Enumerable.Range(0, 50).Select(i => Item($"r{i}"))]);
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));
        }

        // Stopped cleanly: cursors saved, partitions released.
        Assert.Equal(0L, await Database.ScalarAsync("SELECT count(*) FROM crossstoresync.partition_cursors WHERE owner IS NOT NULL"));
        Assert.Equal(ticket.Lsns.Last, (long)(await Database.ScalarAsync("SELECT min(lsn) FROM crossstoresync.partition_cursors WHERE store = 'vectors'"))!);

        await using var again = await StartAsync("second");
        var stats = await again.Manager.GetStatisticsAsync();
        Assert.All(stats, s => Assert.Equal(ticket.Lsns.Last, s.Cursor));
        var more = await again.Manager.WriteAsync(Item("r0", 1));
        Assert.Equal(SyncWaitOutcome.Synced, await again.Manager.WaitForSyncAsync(more, Wait));
    }
}
