using CrossStoreSync.Retention;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Shared;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>Log retention over the embedded SQLite files.</summary>
public sealed class RetentionTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Truncation_removes_applied_entries_gives_the_pages_back_and_numbering_survives_a_restart()
    {
        SyncTicket last = default;
        long pagesBefore;
        await using (var engine = await StartAsync())
        {
            for (var start = 0; start < 3000; start += 100)
            {
                last = await engine.Manager.WriteBatchAsync([.. Enumerable.Range(start, 100).Select(i => Entity("e" + i, 2000))]);
            }

            await SettleAsync(engine, last);
            var log = engine.Services.GetRequiredService<SqliteChangeLog>();
            Assert.Equal(3000, await log.CountEntriesAsync(CancellationToken.None));
            pagesBefore = Pragma("source.db", "page_count");

            var round = await AgeAndRoundAsync(engine);
            Assert.Equal(last.Lsns.Last, round.TruncatedThrough);
            Assert.Equal(3000, round.Removed);
            Assert.Equal(0, await log.CountEntriesAsync(CancellationToken.None));

            // The freed pages went back to the file system rather than onto the free list.
            Assert.Equal(0, Pragma("source.db", "freelist_count"));
            Assert.True(Pragma("source.db", "page_count") < pagesBefore, $"source.db kept {Pragma("source.db", "page_count")} pages of {pagesBefore}.");
            Assert.True((await engine.Manager.GetStatusAsync(new Model.EntityKey("items", "e7"))).IsSynced);
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TimeSpan.FromSeconds(30)));
        }

        await using (var restarted = await StartAsync())
        {
            var next = await restarted.Manager.WriteAsync(Entity("after-restart", 10));
            Assert.Equal(last.Lsns.Last + 1, next.Lsns.First);
            Assert.Equal(SyncWaitOutcome.Synced, await restarted.Manager.WaitForSyncAsync(next, TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task A_source_tombstone_stays_while_the_log_holds_entries_that_read_their_payload_from_it()
    {
        await using var engine = await StartAsync(o =>
        {
            o.Retention.KeepAppliedFor = TimeSpan.FromHours(1);
            o.Retention.TombstoneRetention = TimeSpan.FromMinutes(1);
        });
        var written = await engine.Manager.WriteAsync(Entity("x", 10));
        var deleted = await engine.Manager.DeleteAsync(new Model.EntityKey("items", "x"));
        await SettleAsync(engine, deleted);

        // Older than TombstoneRetention, below the low-water mark: gone from the replicas. The source keeps it: the log
        // still holds x's entries (KeepAppliedFor), and the upsert's entry reads its payload from that row.
        var retention = engine.Services.GetRequiredService<LogRetention>();
        await retention.RunRoundAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(2));
        await retention.RunRoundAsync(CancellationToken.None);
        Assert.Equal(0, Count("vectors.db", "SELECT count(*) FROM vectors WHERE deleted = 1"));
        Assert.Equal(0, Count("graph.db", "SELECT count(*) FROM nodes WHERE deleted = 1"));
        Assert.Equal(1, Count("source.db", "SELECT count(*) FROM documents WHERE deleted = 1"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(written, TimeSpan.FromSeconds(30)));

        _clock.Advance(TimeSpan.FromHours(2));
        var round = await retention.RunRoundAsync(CancellationToken.None);
        Assert.Equal(deleted.Lsns.Last, round.TruncatedThrough);
        Assert.Equal(0, Count("source.db", "SELECT count(*) FROM documents WHERE deleted = 1"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(written, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task An_existing_file_without_incremental_vacuum_is_converted_once_and_keeps_its_data()
    {
        var path = _dir.File("old.db");
        await using (var raw = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await raw.OpenAsync();
            using var command = raw.CreateCommand();
            command.CommandText = "CREATE TABLE checkpoints (name TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO checkpoints VALUES ('kept', 'yes');";
            await command.ExecuteNonQueryAsync();
        }

        Assert.Equal(0, Count("old.db", "PRAGMA auto_vacuum"));
        await using (var log = new SqliteChangeLog(path))
        {
            Assert.True(log.ConvertedToIncrementalVacuum);
            await log.InitializeAsync(CancellationToken.None);
            Assert.Equal("yes", await log.GetCheckpointAsync("kept", CancellationToken.None));
        }

        Assert.Equal(2, Count("old.db", "PRAGMA auto_vacuum"));
        await using (var again = new SqliteChangeLog(path))
        {
            Assert.False(again.ConvertedToIncrementalVacuum);
        }

        await using var fresh = new SqliteVectorStore(_dir.File("fresh.db"));
        Assert.Equal(2, Count("fresh.db", "PRAGMA auto_vacuum"));
    }

    private async Task<TestEngine> StartAsync(Action<Configuration.CrossStoreSyncOptions>? configure = null)
    {
        var engine = await TestEngine.StartAsync(
            b =>
            {
                b.UseSqlite(o => o.DirectoryPath = _dir.Path);
                b.Services.AddSingleton<TimeProvider>(_clock);
            },
            o =>
            {
                o.Retention.KeepAppliedFor = TimeSpan.FromMinutes(1);
                o.Retention.TruncationInterval = TimeSpan.FromDays(1);
                o.Retention.TruncationBatchSize = 500;
                configure?.Invoke(o);
            });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await engine.Services.GetRequiredService<LogRetention>().Rounds.WaitForAsync(1, timeout.Token);
        return engine;
    }

    private async Task<RetentionRound> AgeAndRoundAsync(TestEngine engine)
    {
        var retention = engine.Services.GetRequiredService<LogRetention>();
        await retention.RunRoundAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(2));
        return await retention.RunRoundAsync(CancellationToken.None);
    }

    /// <summary>Waits for the ticket everywhere and for every replica's saved cursor (what retention reads).</summary>
    private static async Task SettleAsync(TestEngine engine, SyncTicket ticket)
    {
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(30)));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        foreach (var dispatcher in engine.Services.GetRequiredService<SyncEngine>().Dispatchers)
        {
            await dispatcher.SavedCursor.WaitForAsync(ticket.Lsns.Last, timeout.Token);
        }
    }

    private static Model.SyncEntity Entity(string id, int documentBytes) =>
        Model.SyncEntity.FromJson(new Model.EntityKey("items", id), $"{{\"text\":\"{new string('d', documentBytes)}\"}}", new float[] { 1, 2, 3, id.Length });

    private long Pragma(string file, string pragma) => Count(file, "PRAGMA " + pragma);

    private long Count(string file, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_dir.File(file)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
