using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.Tests.Retention;

public sealed class LogRetentionTests
{
    [Fact]
    public async Task Applied_entries_older_than_KeepAppliedFor_are_truncated_in_batches_and_numbering_continues()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync();
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        SyncTicket last = default;
        for (var i = 0; i < 10; i++)
        {
            last = await engine.WriteAndSyncAsync(Items.Entity("a" + i));
        }

        await engine.SettleAsync(last.Lsns.Last);

        // Younger than KeepAppliedFor: kept although every store applied them.
        await retention.RoundAsync();
        Assert.Equal(0, await engine.Log.GetTruncatedThroughAsync(CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, (await retention.RoundAsync()).Removed);

        time.Advance(TimeSpan.FromSeconds(31));
        var round = await retention.RoundAsync();
        Assert.Equal(10, round.Removed);
        Assert.Equal(last.Lsns.Last, round.TruncatedThrough);
        Assert.Equal(0, engine.Log.Retained);
        var truncated = await events.WaitForAsync(e => e.Kind == SyncEventKind.LogTruncated, "log truncated");
        Assert.Equal((1, 10, 10), (truncated.FirstLsn, truncated.LastLsn, truncated.Count));

        // The log keeps numbering after what it removed.
        var next = await engine.WriteAndSyncAsync(Items.Entity("b"));
        Assert.Equal(11, next.Lsns.First);
        Assert.Equal(11, await engine.Log.GetLastLsnAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Status_waits_and_statistics_stay_correct_for_keys_whose_entries_were_truncated()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync();
        await using var _ = engine;
        var kept = await engine.WriteAndSyncAsync(Items.Entity("kept", 3));
        var deleted = await engine.WriteAndSyncAsync(Items.Entity("deleted"));
        var delete = await engine.Manager.DeleteAsync(Items.Key("deleted"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(delete, TestEngine.Timeout));
        engine.VectorFaults.RejectKey(Items.Key("fixed"));
        var firstTry = await engine.Manager.WriteAsync(Items.Entity("fixed"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(firstTry, TestEngine.Timeout));
        engine.VectorFaults.AcceptKey(Items.Key("fixed"));
        await engine.WriteAndSyncAsync(Items.Entity("fixed", 2));
        engine.VectorFaults.RejectKey(Items.Key("rejected"));
        var rejected = await engine.Manager.WriteAsync(Items.Entity("rejected"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(rejected, TestEngine.Timeout));
        await engine.SettleAsync(rejected.Lsns.Last);

        await retention.AgeAndRoundAsync(time);
        Assert.Equal(0, engine.Log.Retained);

        var status = await engine.Manager.GetStatusAsync(Items.Key("kept"));
        Assert.Null(status.LastLsn);
        Assert.Equal(kept.Version, status.Version);
        Assert.True(status.IsSynced);

        var gone = await engine.Manager.GetStatusAsync(Items.Key("deleted"));
        Assert.True(gone.IsSynced);
        Assert.Null(gone.Version);

        var letter = await engine.Manager.GetStatusAsync(Items.Key("rejected"));
        Assert.Equal(StoreSyncState.DeadLettered, letter.Stores.Single(s => s.Store == "vectors").State);
        Assert.Equal(StoreSyncState.Synced, letter.Stores.Single(s => s.Store == "graph").State);

        // Its old dead letter is kept, but a newer change of the key was applied since: synced.
        Assert.True((await engine.Manager.GetStatusAsync(Items.Key("fixed"))).IsSynced);

        // Tickets whose entries are gone were applied everywhere (or dead-lettered, which the log still records).
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(kept, TestEngine.Timeout));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(deleted, TestEngine.Timeout));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(rejected, TestEngine.Timeout));
        var spanning = new SyncTicket(new LsnRange(kept.Lsns.First, rejected.Lsns.Last), rejected.Version);
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(spanning, TestEngine.Timeout));

        var stats = await engine.Manager.GetStatisticsAsync();
        Assert.All(stats, s => Assert.Equal(6, s.Cursor));
        Assert.All(stats, s => Assert.Equal(0, s.LagChanges));
        Assert.Equal(2, stats.Single(s => s.Store == "vectors").DeadLetters);
        Assert.All(stats, s => Assert.False(s.NeedsRebuild));
    }

    [Fact]
    public async Task A_replica_that_is_down_holds_truncation_back_with_a_warning_event_a_metric_and_an_unhealthy_health_check()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(
            o => o.Retention.UnhealthyRetainedEntries = 5,
            s => s.AddHealthChecks().AddCrossStoreSync());
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        var health = engine.Services.GetRequiredService<HealthCheckService>();
        var before = await engine.WriteAndSyncAsync(Items.Entity("before"));
        await engine.SettleAsync(before.Lsns.Last);
        engine.VectorFaults.GoDown();
        SyncTicket last = default;
        for (var i = 0; i < 8; i++)
        {
            last = await engine.Manager.WriteAsync(Items.Entity("w" + i));
        }

        await engine.SettleAsync(last.Lsns.Last, "graph");
        var round = await retention.AgeAndRoundAsync(time);

        // Only what the vector store applied before it went down may go.
        Assert.Equal(1, round.TruncatedThrough);
        var held = await events.WaitForAsync(e => e.Kind == SyncEventKind.RetentionHeld && e.Store == "vectors", "vectors holds the log back");
        Assert.Equal((1L, 9L, 8), (held.FirstLsn, held.LastLsn, held.Count));
        var entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("retains 8 entries", entry.Description, StringComparison.Ordinal);
        Assert.Equal(8L, entry.Data["log.retained"]);
        Assert.Equal("vectors", entry.Data["log.held_back_by"]);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TestEngine.Timeout));
        await engine.SettleAsync(last.Lsns.Last, "vectors");
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(last.Lsns.Last, (await retention.RoundAsync()).TruncatedThrough);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["crossstoresync"].Status);
    }

    [Fact]
    public async Task A_registered_holder_holds_truncation_back_and_a_failing_one_holds_everything()
    {
        var holder = new SettableHolder("peer-a");
        var (engine, time, retention) = await RetentionSupport.StartAsync(configureServices: s => s.AddSingleton<ILogRetentionHolder>(holder));
        await using var _ = engine;
        SyncTicket last = default;
        for (var i = 0; i < 6; i++)
        {
            last = await engine.WriteAndSyncAsync(Items.Entity("h" + i));
        }

        await engine.SettleAsync(last.Lsns.Last);
        holder.Position = 2;
        Assert.Equal(2, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);

        holder.Fail = true;
        holder.Position = 5;
        Assert.Equal(2, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);

        holder.Fail = false;
        Assert.Equal(5, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);

        holder.Position = null;
        Assert.Equal(last.Lsns.Last, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
    }

    [Fact]
    public async Task Tombstones_are_purged_in_every_store_once_past_TombstoneRetention_and_below_the_low_water_mark()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o => o.Retention.TombstoneRetention = TimeSpan.FromHours(1));
        await using var _ = engine;
        await engine.WriteAndSyncAsync(Items.Entity("old"));
        await engine.WriteAndSyncAsync(Items.Entity("young"));
        await engine.WriteAndSyncAsync(Items.Entity("held"));
        var oldDelete = await engine.Manager.DeleteAsync(Items.Key("old"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(oldDelete, TestEngine.Timeout));
        await engine.SettleAsync(oldDelete.Lsns.Last);

        // A delete the vector store has not applied yet keeps its tombstone everywhere, however old it gets.
        time.Advance(TimeSpan.FromSeconds(1));
        engine.VectorFaults.GoDown();
        var heldDelete = await engine.Manager.DeleteAsync(Items.Key("held"));
        await engine.SettleAsync(heldDelete.Lsns.Last, "graph");
        time.Advance(TimeSpan.FromMinutes(50));
        var youngDelete = await engine.Manager.DeleteAsync(Items.Key("young"));
        await engine.SettleAsync(youngDelete.Lsns.Last, "graph");
        time.Advance(TimeSpan.FromMinutes(20));
        await retention.RoundAsync();

        foreach (var store in engine.AllStores)
        {
            Assert.Null(store.GetVersion(Items.Key("old")));
            Assert.NotNull(store.GetVersion(Items.Key("young")));
        }

        Assert.NotNull(engine.Source.GetVersion(Items.Key("held")));
        Assert.NotNull(engine.Graph.GetVersion(Items.Key("held")));

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(youngDelete, TestEngine.Timeout));
        await engine.SettleAsync(youngDelete.Lsns.Last, "vectors");
        time.Advance(TimeSpan.FromHours(2));
        await retention.RoundAsync();
        foreach (var store in engine.AllStores)
        {
            Assert.Equal(0, store.CountTombstones(Items.Collection));
        }
    }

    [Fact]
    public async Task Dead_letters_are_kept_until_DeadLetterRetention_then_removed_and_counted()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o => o.Retention.DeadLetterRetention = TimeSpan.FromDays(1));
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        engine.VectorFaults.RejectKey(Items.Key("bad"));
        var bad = await engine.Manager.WriteAsync(Items.Entity("bad"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(bad, TestEngine.Timeout));

        time.Advance(TimeSpan.FromHours(23));
        await retention.RoundAsync();
        Assert.Single(await engine.Manager.GetDeadLettersAsync());
        Assert.Equal(1L, engine.Services.GetRequiredService<CrossStoreSync.Telemetry.SyncMetrics>().Retention!.DeadLetters["vectors"]);

        time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1, (await retention.RoundAsync()).DeadLettersRemoved);
        Assert.Empty(await engine.Manager.GetDeadLettersAsync());
        Assert.False(engine.Services.GetRequiredService<CrossStoreSync.Telemetry.SyncMetrics>().Retention!.DeadLetters.ContainsKey("vectors"));
        var expired = await events.WaitForAsync(e => e.Kind == SyncEventKind.DeadLettersExpired, "dead letters expired");
        Assert.Equal(("vectors", 1), (expired.Store, expired.Count));
    }

    [Fact]
    public async Task Disabled_retention_measures_but_removes_nothing()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o =>
        {
            o.Retention.Enabled = false;
            o.Retention.TombstoneRetention = TimeSpan.FromMinutes(1);
        });
        await using var _ = engine;
        await engine.WriteAndSyncAsync(Items.Entity("x"));
        var delete = await engine.Manager.DeleteAsync(Items.Key("x"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(delete, TestEngine.Timeout));

        var round = await retention.AgeAndRoundAsync(time, TimeSpan.FromHours(1));
        Assert.Equal(0, round.TruncatedThrough);
        Assert.Equal(2, engine.Log.Retained);
        Assert.Equal(1, engine.Source.CountTombstones(Items.Collection));
        Assert.Equal(2, engine.Services.GetRequiredService<CrossStoreSync.Telemetry.SyncMetrics>().Retention!.RetainedEntries);
    }
}
