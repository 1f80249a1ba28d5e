using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Log;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Retention;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Stores;
using CrossStoreSync.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace CrossStoreSync.PostgreSql.Tests.Retention;

/// <summary>Log retention over the shared PostgreSQL log (partitioned dispatch, outbox with the source).</summary>
public sealed class PostgresRetentionTests(ITestOutputHelper output) : DatabaseAndDirectory("csretention")
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly InMemoryVectorStore _vectors = new();
    private readonly InMemoryGraphStore _graph = new();
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task Entries_every_partition_applied_are_truncated_and_numbering_survives_a_restart()
    {
        SyncTicket last = default;
        await using (var engine = await StartAsync())
        {
            for (var round = 0; round < 5; round++)
            {
                last = await engine.Manager.WriteBatchAsync([.. Enumerable.Range(0, 100).Select(i => Entity("e" + i, round))]);
            }

            var deleted = await engine.Manager.DeleteAsync(new EntityKey("items", "e5"));
            await SettleAsync(engine, deleted);
            var log = engine.Services.GetRequiredService<PostgresChangeLog>();
            Assert.Equal(501, await log.CountEntriesAsync(CancellationToken.None));

            var retention = engine.Services.GetRequiredService<LogRetention>();
            await retention.RunRoundAsync(CancellationToken.None);
            _clock.Advance(TimeSpan.FromMinutes(2));
            var truncated = await retention.RunRoundAsync(CancellationToken.None);
            Assert.Equal(deleted.Lsns.Last, truncated.TruncatedThrough);
            Assert.Equal(501, truncated.Removed);
            Assert.Equal(0, await log.CountEntriesAsync(CancellationToken.None));
            Assert.Equal(deleted.Lsns.Last, await log.GetLastLsnAsync(CancellationToken.None));

            // The tombstone of e5 is older than TombstoneRetention (1 minute here) and below every cursor: gone everywhere.
            Assert.Null(await ReadTombstoneVersionAsync("e5"));
            Assert.Null(_vectors.GetVersion(new EntityKey("items", "e5")));
            var status = await engine.Manager.GetStatusAsync(new EntityKey("items", "e7"));
            Assert.True(status.IsSynced);
            Assert.Null(status.LastLsn);
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, Timeout));
        }

        await using (var restarted = await StartAsync())
        {
            var next = await restarted.Manager.WriteAsync(Entity("after", 0));
            Assert.Equal(last.Lsns.Last + 2, next.Lsns.First);
            Assert.Equal(SyncWaitOutcome.Synced, await restarted.Manager.WaitForSyncAsync(next, Timeout));
        }
    }

    [Fact]
    public async Task Log_rows_and_database_size_stay_bounded_under_sustained_writes()
    {
        var changes = RetentionSoak.Changes(30_000);
        await using var engine = await EngineHost.StartAsync(
            b => b.UsePostgreSql(o => o.ConnectionString = Database.ConnectionString)
                .AddReplica("vectors", _ => _vectors)
                .AddReplica("graph", _ => _graph),
            o =>
            {
                o.DispatchBatchSize = 1000;
                o.Retention.KeepAppliedFor = TimeSpan.FromMilliseconds(250);
                o.Retention.TruncationInterval = TimeSpan.FromMilliseconds(200);
                o.Retention.TruncationBatchSize = 5000;
                o.Retention.TombstoneRetention = TimeSpan.FromSeconds(1);
            });
        var log = engine.Services.GetRequiredService<PostgresChangeLog>();
        var retention = engine.Services.GetRequiredService<LogRetention>();
        var figures = await RetentionSoak.RunAsync(
            engine.Manager,
            changes,
            async () => await log.CountEntriesAsync(CancellationToken.None),
            async () => await RelationBytesAsync("crossstoresync.log_entries") + await RelationBytesAsync("crossstoresync.doc_items"),
            () => retention.RunRoundAsync(CancellationToken.None));
        var logBytes = await RelationBytesAsync("crossstoresync.log_entries");
        output.WriteLine($"PostgreSQL (log and documents tables): {figures}; log table at the end: {logBytes:N0} B");
        RetentionSoak.Report("PostgreSQL (log_entries + doc_items tables)", figures);

        // Without truncation the log would hold every change; with it, about what the replicas applied in the last
        // KeepAppliedFor plus a round.
        Assert.True(figures.MaxLogRows <= changes / 2, $"The log held {figures.MaxLogRows} rows of {changes}. {figures}");

        // The documents table's dead row versions (2,000 keys updated 15 times each) are reclaimed by a VACUUM that
        // depends on PostgreSQL's statistics, which reach the purge asynchronously: in a 4-second run the quarter mark
        // can come before the first one, so the slack is wider than SQLite's (the row bound above is the sharp check).
        Assert.True(figures.PeakBytes <= (figures.QuarterBytes * 3 / 2) + (16L << 20), $"The tables grew past their size at a quarter of the run. {figures}");
        Assert.True(figures.EndBytes <= (figures.QuarterBytes * 3 / 2) + (16L << 20), figures.ToString());
    }

    private async Task<EngineHost> StartAsync()
    {
        var engine = await EngineHost.StartAsync(
            b =>
            {
                b.UsePostgreSql(o => o.ConnectionString = Database.ConnectionString)
                    .AddReplica("vectors", _ => _vectors)
                    .AddReplica("graph", _ => _graph);
                b.Services.AddSingleton<TimeProvider>(_clock);
            },
            o =>
            {
                o.Retention.KeepAppliedFor = TimeSpan.FromMinutes(1);
                o.Retention.TombstoneRetention = TimeSpan.FromMinutes(1);
                o.Retention.TruncationInterval = TimeSpan.FromDays(1);
                o.Retention.TruncationBatchSize = 100;
            });
        using var timeout = new CancellationTokenSource(Timeout);
        await engine.Services.GetRequiredService<LogRetention>().Rounds.WaitForAsync(1, timeout.Token);
        return engine;
    }

    private static async Task SettleAsync(EngineHost engine, SyncTicket ticket)
    {
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Timeout));
        using var timeout = new CancellationTokenSource(Timeout);
        foreach (var dispatcher in engine.Services.GetRequiredService<SyncEngine>().Dispatchers)
        {
            await dispatcher.SavedCursor.WaitForAsync(ticket.Lsns.Last, timeout.Token);
        }
    }

    private async Task<long?> ReadTombstoneVersionAsync(string id)
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT version FROM crossstoresync.doc_items WHERE id = $1 AND deleted", connection);
        command.Parameters.AddWithValue(id);
        return await command.ExecuteScalarAsync() is long version ? version : null;
    }

    /// <summary>A table's size on disk with its indexes and TOAST.</summary>
    private async Task<long> RelationBytesAsync(string table)
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT pg_total_relation_size(to_regclass($1))", connection);
        command.Parameters.AddWithValue(table);
        return await command.ExecuteScalarAsync() is long bytes ? bytes : 0;
    }

    private static SyncEntity Entity(string id, int round) =>
        SyncEntity.FromJson(new EntityKey("items", id), $"{{\"round\":{round}}}", new float[] { round, 1, 2, 3 });
}
