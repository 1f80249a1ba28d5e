using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.Tests.DependencyInjection;

public sealed class HealthCheckTests
{
    [Fact]
    public async Task Health_is_healthy_when_synced_and_degraded_while_a_replica_lags_beyond_the_limit()
    {
        await using var engine = await TestEngine.StartAsync(configureServices: s => s.AddHealthChecks().AddCrossStoreSync(maxLagChanges: 10));
        var health = engine.Services.GetRequiredService<HealthCheckService>();

        await engine.WriteAndSyncAsync(Items.Entity("a"));
        var entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(0L, entry.Data["vectors.lag"]);

        engine.VectorFaults.GoDown();
        SyncTicket last = default;
        for (var i = 0; i < 10; i++)
        {
            last = await engine.Manager.WriteAsync(Items.Entity($"lag{i}"));
        }

        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
        entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Healthy, entry.Status); // exactly at the limit is still healthy

        last = await engine.Manager.WriteAsync(Items.Entity("lag10"));
        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
        entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Contains("vectors", entry.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("graph", entry.Description, StringComparison.Ordinal);
        Assert.Equal(11L, entry.Data["vectors.lag"]);
        Assert.Equal(0L, entry.Data["graph.lag"]);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TestEngine.Timeout));
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["crossstoresync"].Status);
    }

    [Fact]
    public async Task Lag_includes_writes_that_were_pending_during_a_source_outage()
    {
        await using var engine = await TestEngine.StartAsync(
            o => o.SourceRetryAttempts = 0,
            configureServices: s => s.AddHealthChecks().AddCrossStoreSync(maxLagChanges: 2));
        var health = engine.Services.GetRequiredService<HealthCheckService>();
        await engine.WriteAndSyncAsync(Items.Entity("a"));

        // The vector replica is down, and so is the source while three writes arrive: they are logged as pending.
        engine.VectorFaults.GoDown();
        engine.SourceFaults.GoDown();
        var pending = new List<SyncTicket>();
        for (var i = 0; i < 3; i++)
        {
            var ex = await Assert.ThrowsAsync<CrossStoreSync.Errors.SourceUnavailableException>(async () => await engine.Manager.WriteAsync(Items.Entity($"p{i}")));
            pending.Add(ex.Ticket);
        }

        // The source recovers and the resolver commits them; the graph replica applies them, the vector replica cannot.
        engine.SourceFaults.ComeBack();
        await engine.WaitForReplicaAsync("graph", pending[^1].Lsns.Last);

        var stats = await engine.Manager.GetStatisticsAsync();
        Assert.Equal(3, stats.Single(s => s.Store == "vectors").LagChanges);
        var entry = (await health.CheckHealthAsync()).Entries["crossstoresync"];
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal(3L, entry.Data["vectors.lag"]);

        engine.VectorFaults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(pending[^1], TestEngine.Timeout));
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["crossstoresync"].Status);
    }
}
