using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.DependencyInjection;

/// <summary>
/// Reports replicas whose lag passes the thresholds as degraded; a dispatcher stopped by log corruption, a replica that
/// needs a rebuild, and a log retaining more than <c>Retention.UnhealthyRetainedEntries</c> as unhealthy.
/// </summary>
internal sealed class CrossStoreSyncHealthCheck(SyncMetrics metrics, long maxLagChanges, TimeSpan maxLagTime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var degraded = new List<string>();
        var faulted = new List<string>();
        var rebuild = new List<string>();
        foreach (var lag in metrics.GetLag())
        {
            data[lag.Store + ".lag"] = lag.Changes;
            data[lag.Store + ".lag_seconds"] = lag.Seconds;
            data[lag.Store + ".needs_rebuild"] = lag.NeedsRebuild;
            if (lag.NeedsRebuild)
            {
                rebuild.Add(lag.Store);
            }
            else if (lag.Faulted)
            {
                faulted.Add(lag.Store);
            }
            else if (lag.Changes > maxLagChanges || lag.Seconds > maxLagTime.TotalSeconds)
            {
                degraded.Add(lag.Store);
            }
        }

        var retention = metrics.Retention;
        var overRetained = false;
        if (retention is not null)
        {
            data["log.retained"] = retention.RetainedEntries;
            data["log.retained_bytes"] = retention.RetainedBytes;
            data["log.low_water_mark"] = retention.LowWaterMark;
            data["log.held_back_by"] = string.Join(", ", retention.HoldingBack);
            overRetained = retention.RetainedEntries > retention.UnhealthyRetainedEntries;
        }

        var result = faulted.Count > 0
            ? HealthCheckResult.Unhealthy($"Dispatchers stopped by a corrupted change log: {string.Join(", ", faulted)}.", data: data)
            : rebuild.Count > 0
            ? HealthCheckResult.Unhealthy($"Replicas that fell behind past the log's retention and need a rebuild (a backfill through IMigrationManager): {string.Join(", ", rebuild)}.", data: data)
            : overRetained
            ? HealthCheckResult.Unhealthy($"The change log retains {retention!.RetainedEntries} entries, more than Retention.UnhealthyRetainedEntries ({retention.UnhealthyRetainedEntries}); held back by: {string.Join(", ", retention.HoldingBack)}.", data: data)
            : degraded.Count > 0
                ? HealthCheckResult.Degraded($"Replicas lagging beyond {maxLagChanges} changes or {maxLagTime}: {string.Join(", ", degraded)}.", data: data)
                : HealthCheckResult.Healthy("Every replica is within its lag limits.", data);
        return Task.FromResult(result);
    }
}
