using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Retention;

public sealed class MigrationHoldTests
{
    [Fact]
    public async Task A_running_migration_holds_truncation_at_its_start_until_it_finishes()
    {
        var gate = new BackfillGate();
        var (engine, time, retention) = await RetentionSupport.StartAsync(configureServices: s => s.AddCrossStoreSync().AddTransform("gated", gate.TransformAsync));
        await using var _ = engine;
        await using var events = new EventRecorder(engine.Manager);
        var start = await WriteAsync(engine, "r", 5);

        var run = Task.Run(() => engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest { Id = "slow", Target = "graph", TransformName = "gated", Verify = false }));
        await gate.Blocked.Task.WaitAsync(TestEngine.Timeout);
        var later = await WriteAsync(engine, "w", 6);

        Assert.Equal(start, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
        var held = await events.WaitForAsync(e => e.Kind == SyncEventKind.RetentionHeld && e.Store == "migration slow", "the migration holds the log");
        Assert.Equal(start, held.FirstLsn);

        gate.Release();
        await run.WaitAsync(TestEngine.Timeout);
        Assert.Equal(later, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
    }

    [Fact]
    public async Task A_re_embedding_and_its_route_hold_truncation_until_the_switch()
    {
        var gate = new BackfillGate();
        var (engine, time, retention) = await RetentionSupport.StartAsync(
            o => o.AddCollection("items_v2", Items.Dimension),
            s => s.AddCrossStoreSync().AddTransform("embed-v2", gate.TransformAsync));
        await using var _ = engine;
        var start = await WriteAsync(engine, "r", 5);

        var run = Task.Run(() => engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest
        {
            Id = "reembed", Target = "vectors", Collections = [Items.Collection], TargetCollection = "items_v2", TransformName = "embed-v2",
        }));
        await gate.Blocked.Task.WaitAsync(TestEngine.Timeout);

        // Live writes go through the route (transformed into items_v2) while the backfill waits.
        var later = await WriteAsync(engine, "w", 6);
        Assert.NotNull(engine.Vectors.GetVersion(new EntityKey("items_v2", "w5")));
        Assert.Equal(start, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
        Assert.Equal(start, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);

        gate.Release();
        var report = await run.WaitAsync(TestEngine.Timeout);
        Assert.True(report.IsVerified);
        var switched = await engine.WriteAndSyncAsync(Items.Entity("after-switch"));
        await engine.SettleAsync(switched.Lsns.Last);
        Assert.Equal(switched.Lsns.Last, (await retention.AgeAndRoundAsync(time)).TruncatedThrough);
        Assert.True(later < switched.Lsns.Last);
    }

    private static async Task<long> WriteAsync(TestEngine engine, string prefix, int count)
    {
        SyncTicket last = default;
        for (var i = 0; i < count; i++)
        {
            last = await engine.WriteAndSyncAsync(Items.Entity(prefix + i));
        }

        await engine.SettleAsync(last.Lsns.Last);
        return last.Lsns.Last;
    }

    /// <summary>
    /// An identity transform that lets the migration's probe through, then blocks its backfill on the first entity written
    /// before the migration (ids starting with "r") until released. Live changes ("w…") pass, so routes keep flowing.
    /// </summary>
    private sealed class BackfillGate
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;

        public TaskCompletionSource Blocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _release.TrySetResult();

        public async ValueTask<SyncEntity> TransformAsync(SyncEntity entity, CancellationToken cancellationToken)
        {
            if (entity.Key.Id.StartsWith('r') && Interlocked.Increment(ref _calls) >= 2)
            {
                Blocked.TrySetResult();
                await _release.Task.WaitAsync(cancellationToken);
            }

            return entity;
        }
    }
}
