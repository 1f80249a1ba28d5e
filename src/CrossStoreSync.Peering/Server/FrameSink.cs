using System.Buffers;
using CrossStoreSync.Log;
using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Telemetry;

namespace CrossStoreSync.Peering.Server;

/// <summary>Writes the signed frames of one answer, numbering them from 0 under the request's sequence number.</summary>
internal sealed class FrameSink(Stream body, byte[] session, long request, NodeIdentity identity, PeeringMetrics metrics, int peer, CancellationToken cancellationToken)
{
    private int _index;

    public async Task WriteAsync(FrameKind kind, ResetReason reason, long from, long to, long fingerprint, long head, int count, ReadOnlyMemory<byte> payload)
    {
        var header = new FrameHeader(kind, reason, session, request, _index++, from, to, fingerprint, head, count, payload.Length);
        await header.WriteAsync(body, payload, identity, cancellationToken).ConfigureAwait(false);

        // Each frame is flushed at once: a long-polled write must reach the puller now, not when a buffer fills.
        await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        metrics.Bytes.Add(FrameHeader.Length + payload.Length, PeeringMetrics.Peer(peer), new KeyValuePair<string, object?>("direction", "sent"));
    }

    /// <summary>
    /// Writes the states [<paramref name="start"/>, <paramref name="end"/>) as one frame of <paramref name="bytes"/>
    /// (their <see cref="StateCodec.ChunkEnd"/> size). The body is encoded into a pooled buffer: chunks are up to
    /// <see cref="Configuration.PeeringOptions.ChunkBytes"/> (2 MiB by default), and a fresh array per chunk would land
    /// on the large object heap and cost a full collection every few chunks.
    /// </summary>
    public async Task WriteStatesAsync(FrameKind kind, long from, long to, long fingerprint, long head, IReadOnlyList<ReplicatedState> states, int start, int end, int bytes)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            StateCodec.EncodeStates(states, start, end - start, buffer.AsSpan(0, bytes));
            await WriteAsync(kind, ResetReason.None, from, to, fingerprint, head, end - start, buffer.AsMemory(0, bytes)).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public Task EndAsync(long head) => WriteAsync(FrameKind.End, ResetReason.None, 0, 0, 0, head, 0, ReadOnlyMemory<byte>.Empty);
}
