using CrossStoreSync.Consistency;
using CrossStoreSync.Migration;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Stores;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.Tests.Retention;

public sealed class RebuildTests
{
    [Fact]
    public async Task A_replica_down_past_MaxRetainedEntries_is_cut_off_marked_rebuilt_and_checked_clean()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(
            o =>
            {
                o.DispatchBatchSize = 10;
                o.Retention.MaxRetainedEntries = 10;
            },
            s => s.AddHealthChecks().AddCrossStoreSync());
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        var before = await WriteWhileVectorsAreDownAsync(engine);

        var round = await retention.AgeAndRoundAsync(time);
        Assert.Equal(["vectors"], round.CutOff);
        var cut = await events.WaitForAsync(e => e.Kind == SyncEventKind.NeedsRebuild, "vectors needs a rebuild");
        Assert.Equal(("vectors", before), (cut.Store, cut.FirstLsn));

        // The log no longer holds what the vector store missed; everything every other store applied is gone.
        Assert.Equal(round.Head, round.TruncatedThrough);
        var status = await engine.Manager.GetStatusAsync(Items.Key("e3"));
        Assert.Equal(StoreSyncState.NeedsRebuild, status.Stores.Single(s => s.Store == "vectors").State);
        Assert.Contains("past the retention cap", status.Stores.Single(s => s.Store == "vectors").Reason, StringComparison.Ordinal);
        Assert.True((await engine.Manager.GetStatisticsAsync()).Single(s => s.Store == "vectors").NeedsRebuild);
        var health = (await engine.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains("need a rebuild", health.Description, StringComparison.Ordinal);

        // Back up, it applies nothing by itself (the batch it was retrying completes; nothing after it).
        engine.VectorFaults.ComeBack();
        var afterCut = await engine.Manager.WriteAsync(Items.Entity("after-cut"));
        await engine.WaitForReplicaAsync("graph", afterCut.Lsns.Last);
        Assert.Null(engine.Vectors.GetVersion(Items.Key("after-cut")));

        var report = await engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest { Id = "rebuild-vectors", Target = "vectors" });
        Assert.True(report.IsVerified);
        await events.WaitForAsync(e => e.Kind == SyncEventKind.Rebuilt && e.Store == "vectors", "vectors rebuilt");
        await AssertRebuiltAsync(engine, afterCut);
        Assert.Equal(HealthStatus.Healthy, (await engine.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["crossstoresync"].Status);

        // The mark is gone for good: a restart dispatches the vector store as usual.
        await engine.StopAsync();
        var (restarted, _, _) = await RetentionSupport.StartAsync(o => o.DispatchBatchSize = 10, restartOf: engine, time: time);
        await using var __ = restarted;
        Assert.False(restarted.Engine.Dispatchers.Single(d => d.Name == "vectors").NeedsRebuild);
        await restarted.WriteAndSyncAsync(Items.Entity("after-restart"));
    }

    [Fact]
    public async Task With_RebuildAutomatically_a_cut_off_replica_is_rebuilt_by_itself()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o =>
        {
            o.DispatchBatchSize = 10;
            o.Retention.MaxRetainedEntries = 10;
            o.Retention.RebuildAutomatically = true;
        });
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        await WriteWhileVectorsAreDownAsync(engine, hang: true);

        await retention.AgeAndRoundAsync(time);
        await events.WaitForAsync(e => e.Kind == SyncEventKind.NeedsRebuild, "vectors needs a rebuild");
        engine.VectorFaults.StopHanging();

        await events.WaitForAsync(e => e.Kind == SyncEventKind.Rebuilt && e.Store == "vectors", "vectors rebuilt automatically");
        var migrations = await engine.Services.GetRequiredService<IMigrationManager>().ListAsync();
        Assert.Contains(migrations, m => m.MigrationId.StartsWith("rebuild-vectors-", StringComparison.Ordinal) && m.Phase == MigrationPhase.Completed);
        await AssertRebuiltAsync(engine, await engine.WriteAndSyncAsync(Items.Entity("after")));
    }

    [Fact]
    public async Task A_replica_added_after_the_log_was_truncated_is_marked_at_start_and_rebuilt()
    {
        var (first, time, retention) = await RetentionSupport.StartAsync();
        SyncTicket last = default;
        for (var i = 0; i < 5; i++)
        {
            last = await first.WriteAndSyncAsync(Items.Entity("r" + i));
        }

        await first.SettleAsync(last.Lsns.Last);
        Assert.Equal(last.Lsns.Last, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
        await first.StopAsync();

        var late = new InMemoryVectorStore("late");
        var (engine, _, _) = await RetentionSupport.StartAsync(
            configureServices: s => s.AddCrossStoreSync().AddReplica("late", _ => late),
            restartOf: first,
            time: time);
        await using var _ = engine;
        var dispatcher = engine.Engine.Dispatchers.Single(d => d.Name == "late");
        Assert.True(dispatcher.NeedsRebuild);
        Assert.Equal(StoreSyncState.NeedsRebuild, (await engine.Manager.GetStatusAsync(Items.Key("r1"))).Stores.Single(s => s.Store == "late").State);

        var report = await engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest { Id = "fill-late", Target = "late" });
        Assert.True(report.IsVerified);
        Assert.False(dispatcher.NeedsRebuild);
        Assert.Equal(5, await late.CountAsync(Items.Collection, CancellationToken.None));
        var next = await engine.WriteAndSyncAsync(Items.Entity("next"));
        Assert.NotNull(late.GetVersion(Items.Key("next")));
        Assert.True(next.Lsns.First > last.Lsns.Last);
    }

    [Fact]
    public async Task A_rebuild_must_be_verified()
    {
        var (engine, time, retention) = await RetentionSupport.StartAsync(o =>
        {
            o.DispatchBatchSize = 10;
            o.Retention.MaxRetainedEntries = 10;
        });
        await using var _ = engine;
        await WriteWhileVectorsAreDownAsync(engine);
        await retention.AgeAndRoundAsync(time);
        engine.VectorFaults.ComeBack();

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest { Id = "unchecked", Target = "vectors", Verify = false }));
        Assert.Contains("MigrationRequest.Verify", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Writes e0..e4 everywhere, takes the vector store down, writes 30 more and deletes e1 and e2 (so the rebuilt store
    /// must lose them: only a check and repair can tell it). Returns the vector store's saved cursor before it went down.
    /// </summary>
    private static async Task<long> WriteWhileVectorsAreDownAsync(TestEngine engine, bool hang = false)
    {
        SyncTicket last = default;
        for (var i = 0; i < 5; i++)
        {
            last = await engine.WriteAndSyncAsync(Items.Entity("e" + i));
        }

        await engine.SettleAsync(last.Lsns.Last);
        var before = last.Lsns.Last;
        if (hang)
        {
            engine.VectorFaults.Hang();
        }
        else
        {
            engine.VectorFaults.GoDown();
        }

        for (var i = 0; i < 30; i++)
        {
            last = await engine.Manager.WriteAsync(Items.Entity("w" + i));
        }

        await engine.Manager.DeleteAsync(Items.Key("e1"));
        last = await engine.Manager.DeleteAsync(Items.Key("e2"));
        await engine.SettleAsync(last.Lsns.Last, "graph");
        return before;
    }

    private static async Task AssertRebuiltAsync(TestEngine engine, SyncTicket written)
    {
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(written, TestEngine.Timeout));
        var check = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync(Items.Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(check.IsConsistent, string.Join("; ", check.Stores.Select(s => $"{s.Store}: {s.Missing} missing, {s.Orphaned} orphaned, {s.Stale} stale, {s.Corrupted} corrupted")));
        Assert.Empty(await engine.Vectors.ReadDigestsAsync(Items.Collection, ["e1", "e2"], CancellationToken.None));
        Assert.True((await engine.Manager.GetStatusAsync(Items.Key("w29"))).IsSynced);
        Assert.False((await engine.Manager.GetStatisticsAsync()).Single(s => s.Store == "vectors").NeedsRebuild);
    }
}
