using System.Diagnostics.Metrics;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Peering.Telemetry;

/// <summary>
/// The peering instruments, on the library's one <c>CrossStoreSync</c> meter (<see cref="IMeterFactory"/> hands every
/// package of a service provider the same meter for the same name).
/// </summary>
internal sealed class PeeringMetrics
{
    private Func<IReadOnlyList<PeerStatus>>? _status;

    public PeeringMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(SyncTelemetry.Name);
        Received = meter.CreateCounter<long>("crossstoresync.peer.states_received", "{state}", "States received from a peer in pulls and repairs.");
        Bytes = meter.CreateCounter<long>("crossstoresync.peer.bytes", "By", "Bytes exchanged with a peer, by direction (sent, received).");
        Errors = meter.CreateCounter<long>("crossstoresync.peer.errors", "{error}", "Failed exchanges with a peer, by error code.");
        RepairKeys = meter.CreateCounter<long>("crossstoresync.peer.repair.keys", "{entity}", "Keys a Merkle comparison with a peer found different and pulled.");
        meter.CreateObservableGauge("crossstoresync.peer.lag", ObserveLag, "{entry}", "Entries of a peer's log this node has not pulled yet (as of the last exchange).");
        meter.CreateObservableGauge("crossstoresync.peer.lag.time", ObserveLagSeconds, "s", "Time since this node last held everything a peer's log had.");
    }

    public Counter<long> Received { get; }

    public Counter<long> Bytes { get; }

    public Counter<long> Errors { get; }

    public Counter<long> RepairKeys { get; }

    public void SetStatusSource(Func<IReadOnlyList<PeerStatus>> status) => _status = status;

    public static KeyValuePair<string, object?> Peer(int nodeId) => new("peer", nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private IEnumerable<Measurement<long>> ObserveLag()
    {
        foreach (var status in _status?.Invoke() ?? [])
        {
            yield return new Measurement<long>(status.LagEntries, Peer(status.NodeId));
        }
    }

    private IEnumerable<Measurement<double>> ObserveLagSeconds()
    {
        foreach (var status in _status?.Invoke() ?? [])
        {
            yield return new Measurement<double>(status.LagSeconds, Peer(status.NodeId));
        }
    }
}
