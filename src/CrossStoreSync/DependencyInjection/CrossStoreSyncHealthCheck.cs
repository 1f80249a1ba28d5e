using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.DependencyInjection;

/// <summary>Reports replicas whose lag passes the thresholds as degraded, and a dispatcher stopped by log corruption as unhealthy.</summary>
internal sealed class CrossStoreSyncHealthCheck(SyncMetrics metrics, long maxLagChanges, TimeSpan maxLagTime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var degraded = new List<string>();
        var faulted = new List<string>();
        foreach (var lag in metrics.GetLag())
        {
            data[lag.Store + ".lag"] = lag.Changes;
            data[lag.Store + ".lag_seconds"] = lag.Seconds;
            if (lag.Faulted)
            {
                faulted.Add(lag.Store);
            }
            else if (lag.Changes > maxLagChanges || lag.Seconds > maxLagTime.TotalSeconds)
            {
                degraded.Add(lag.Store);
            }
        }

        var result = faulted.Count > 0
            ? HealthCheckResult.Unhealthy($"Dispatchers stopped by a corrupted change log: {string.Join(", ", faulted)}.", data: data)
            : degraded.Count > 0
                ? HealthCheckResult.Degraded($"Replicas lagging beyond {maxLagChanges} changes or {maxLagTime}: {string.Join(", ", degraded)}.", data: data)
                : HealthCheckResult.Healthy("Every replica is within its lag limits.", data);
        return Task.FromResult(result);
    }
}
