using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Telemetry;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the CrossStoreSync lag health check.</summary>
public static class CrossStoreSyncHealthChecksBuilderExtensions
{
    /// <summary>Adds a health check named <c>crossstoresync</c>: degraded when a replica lags more than the limits, unhealthy when a dispatcher is stopped by a corrupted log.</summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="maxLagChanges">The most unapplied changes tolerated. <value>Default 10,000.</value></param>
    /// <param name="maxLagTime">The oldest unapplied change tolerated. <value>Default 1 minute.</value></param>
    public static IHealthChecksBuilder AddCrossStoreSync(this IHealthChecksBuilder builder, long maxLagChanges = 10_000, TimeSpan? maxLagTime = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLagChanges);
        var time = maxLagTime ?? TimeSpan.FromMinutes(1);
        return builder.Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
            "crossstoresync",
            sp => new CrossStoreSyncHealthCheck(sp.GetRequiredService<SyncMetrics>(), maxLagChanges, time),
            failureStatus: null,
            tags: ["crossstoresync"]));
    }
}
