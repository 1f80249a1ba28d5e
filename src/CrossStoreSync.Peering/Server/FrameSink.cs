using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Telemetry;

namespace CrossStoreSync.Peering.Server;

/// <summary>Writes the signed frames of one answer, numbering them from 0 under the request's sequence number.</summary>
internal sealed class FrameSink(Stream body, byte[] session, long request, NodeIdentity identity, PeeringMetrics metrics, int peer, CancellationToken cancellationToken)
{
    private int _index;

    public async Task WriteAsync(FrameKind kind, ResetReason reason, long from, long to, long fingerprint, long head, int count, byte[] payload)
    {
        var header = new FrameHeader(kind, reason, session, request, _index++, from, to, fingerprint, head, count, payload.Length);
        await header.WriteAsync(body, payload, identity, cancellationToken).ConfigureAwait(false);

        // Each frame is flushed at once: a long-polled write must reach the puller now, not when a buffer fills.
        await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        metrics.Bytes.Add(FrameHeader.Length + payload.Length, PeeringMetrics.Peer(peer), new KeyValuePair<string, object?>("direction", "sent"));
    }

    public Task EndAsync(long head) => WriteAsync(FrameKind.End, ResetReason.None, 0, 0, 0, head, 0, []);
}
