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
}
