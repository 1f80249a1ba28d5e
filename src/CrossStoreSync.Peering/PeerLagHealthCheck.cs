using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrossStoreSync.Peering;

/// <summary>Degraded when this node lags a peer beyond the limits or the last exchange with a peer failed.</summary>
internal sealed class PeerLagHealthCheck(IPeerReplication replication, long maxLagEntries, TimeSpan maxLagTime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var peer in replication.GetStatus())
        {
            var name = "node-" + peer.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            data[name + ".lag"] = peer.LagEntries;
            data[name + ".lag_seconds"] = peer.LagSeconds;
            if (peer.LastError is { } error)
            {
                data[name + ".error"] = error;
                problems.Add($"{name}: {peer.LastErrorCode}");
            }
            else if (peer.LagEntries > maxLagEntries || peer.LagSeconds > maxLagTime.TotalSeconds)
            {
                problems.Add($"{name}: {peer.LagEntries} entries, {peer.LagSeconds:0.#} s behind");
            }
        }

        return Task.FromResult(problems.Count == 0
            ? HealthCheckResult.Healthy("Every peer is within its lag limits.", data)
            : HealthCheckResult.Degraded("Peers behind or failing: " + string.Join("; ", problems) + ".", data: data));
    }
}
