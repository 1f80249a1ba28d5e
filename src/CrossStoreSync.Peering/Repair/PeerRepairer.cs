using System.Diagnostics;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering.Client;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Telemetry;
using CrossStoreSync.Replication;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Repair;

/// <summary>
/// Cross-node repair (DESIGN.md §7): for each exchanged collection, this node's Merkle tree over its source is compared
/// with the peer's leaves (one round trip), the state digests of the differing leaves only are fetched (one more), and
/// the states that differ are pulled by key and applied through the same path as replicated chunks (newer applied,
/// older ignored, concurrent resolved). It heals what cursors cannot: a peer restored from a backup, a new log id, a
/// log truncated during a long partition. Runs on its own session, beside the pull loop.
/// </summary>
internal sealed class PeerRepairer(PeerInfo peer, PeerDirectory directory, PeerClient control, IReplicationWriter writer, PeeringMetrics metrics, TimeProvider time, ILogger logger) : IDisposable
{
    private const int LeavesPerRequest = 50_000;
    private const int IdsPerRequest = 10_000;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public PeerClient Client => control;

    /// <summary>The peer's log id and head, and whether <paramref name="cursor"/> is still valid on its log.</summary>
    public async Task<(string LogId, long Head, bool CursorValid)> WatermarkAsync(PeerCursor cursor, CancellationToken cancellationToken)
    {
        string? logId = null;
        long head = 0;
        var valid = true;
        await control.RequestAsync(PeerProtocol.WatermarkPath, new ChangesRequest(cursor.LogId, cursor.Lsn, cursor.Fingerprint, 0), PeerJson.Default.ChangesRequest, directory.Options.RequestTimeout, (header, body) =>
        {
            if (header.Kind == FrameKind.Watermark)
            {
                logId = System.Text.Encoding.UTF8.GetString(body.Span);
                head = header.To;
                valid = header.Reason == ResetReason.None;
            }

            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
        return (logId ?? throw new PeerProtocolException($"Node {peer.NodeId} answered a watermark request without a watermark.", PeerErrorCode.Malformed), head, valid);
    }

    public async Task<PeerRepairReport> RepairAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var started = time.GetTimestamp();
            var (received, sent, trips) = (control.BytesReceived, control.BytesSent, control.RoundTrips);
            var log = await writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
            var results = new List<CollectionRepair>();
            foreach (var collection in peer.Collections.Order(StringComparer.Ordinal))
            {
                results.Add(await RepairCollectionAsync(log, collection, cancellationToken).ConfigureAwait(false));
            }

            return new PeerRepairReport(peer.NodeId, results, control.BytesReceived - received, control.BytesSent - sent, control.RoundTrips - trips, time.GetElapsedTime(started));
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<CollectionRepair> RepairCollectionAsync(IReplicationLog log, string collection, CancellationToken cancellationToken)
    {
        var (received, trips) = (control.BytesReceived, control.RoundTrips);
        var tree = await SourceTrees.BuildAsync(log, collection, directory.Options.RepairTreeDepth, cancellationToken).ConfigureAwait(false);

        // About 8 entities per leaf: a smaller collection compares a shallower level of the same tree, so the leaves
        // sent stay a small part of what a full transfer would be.
        var depth = Math.Clamp((int)Math.Ceiling(Math.Log2(Math.Max(1, tree.EntryCount) / 8.0)), MerkleTree.MinDepth, tree.Depth);
        var local = SourceTrees.Level(tree, depth);
        UInt128[]? remote = null;
        await control.RequestAsync(PeerProtocol.LeavesPath, new LeavesRequest(collection, depth), PeerJson.Default.LeavesRequest, directory.Options.RequestTimeout, (header, body) =>
        {
            remote = header.Kind == FrameKind.Leaves ? StateCodec.DecodeLeaves(body.Span, header.Count) : remote;
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
        if (remote is null || remote.Length != local.Length)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} answered with {remote?.Length ?? 0} Merkle leaves for {SafeText.Quote(collection)} where {local.Length} were asked for.", PeerErrorCode.Malformed);
        }

        var differing = new List<int>();
        for (var i = 0; i < remote.Length; i++)
        {
            if (local[i] != remote[i])
            {
                differing.Add(i);
            }
        }

        var pulled = 0;
        var written = 0;
        var conflicts = 0;
        if (differing.Count > 0)
        {
            var candidates = await FindDifferingIdsAsync(log, collection, depth, differing, cancellationToken).ConfigureAwait(false);
            metrics.RepairKeys.Add(candidates.Count, PeeringMetrics.Peer(peer.NodeId), new KeyValuePair<string, object?>("collection", collection));
            for (var i = 0; i < candidates.Count; i += IdsPerRequest)
            {
                var ids = candidates.GetRange(i, Math.Min(IdsPerRequest, candidates.Count - i)).ToArray();
                await control.RequestAsync(PeerProtocol.StatesPath, new StatesRequest(collection, ids), PeerJson.Default.StatesRequest, directory.Options.RequestTimeout, async (header, body) =>
                {
                    if (header.Kind != FrameKind.States)
                    {
                        return;
                    }

                    var states = StateCodec.DecodeStates(body.Span, header.Count);
                    pulled += states.Count;
                    var result = await ApplyAsync(states, cancellationToken).ConfigureAwait(false);
                    written += result.Written;
                    conflicts += result.Conflicts.Count;
                }, cancellationToken).ConfigureAwait(false);
            }
        }

        PeeringLog.RepairFinished(logger, peer.NodeId, collection, differing.Count, local.Length, pulled, written, control.BytesReceived - received, control.RoundTrips - trips);
        return new CollectionRepair(collection, local.Length, differing.Count, pulled, written, conflicts);
    }

    /// <summary>The ids whose state on the peer differs from this node's (or that this node lacks), within the differing leaves.</summary>
    private async Task<List<string>> FindDifferingIdsAsync(IReplicationLog log, string collection, int depth, List<int> differing, CancellationToken cancellationToken)
    {
        var theirs = new List<StateDigest>();
        for (var i = 0; i < differing.Count; i += LeavesPerRequest)
        {
            var leaves = differing.GetRange(i, Math.Min(LeavesPerRequest, differing.Count - i)).ToArray();
            await control.RequestAsync(PeerProtocol.DigestsPath, new DigestsRequest(collection, depth, leaves), PeerJson.Default.DigestsRequest, directory.Options.RequestTimeout, (header, body) =>
            {
                if (header.Kind == FrameKind.Digests)
                {
                    theirs.AddRange(StateCodec.DecodeDigests(body.Span, header.Count));
                }

                return Task.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
        }

        var mine = new Dictionary<string, StateDigest>(StringComparer.Ordinal);
        foreach (var digest in await SourceTrees.ReadLeavesAsync(log, collection, depth, differing, cancellationToken).ConfigureAwait(false))
        {
            mine[digest.Id] = digest;
        }

        var result = new List<string>();
        foreach (var digest in theirs)
        {
            if (!mine.TryGetValue(digest.Id, out var own) || own != digest)
            {
                result.Add(digest.Id);
            }
        }

        return result;
    }

    private async Task<ReplicationWriteResult> ApplyAsync(List<ReplicatedState> states, CancellationToken cancellationToken)
    {
        try
        {
            return await writer.ApplyAsync(
                new ReplicationBatch(peer.NodeId, states)
                {
                    AllowCollection = peer.Exchanges,
                    Resolvers = c => directory.Options.ConflictResolvers.TryGetValue(c, out var r) ? r : null,
                    MaxClockAhead = directory.Options.MaxClockSkew,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (ReplicationRejectedException ex)
        {
            PeeringLog.StateRefused(logger, peer.NodeId, ex.Reason.ToString(), 0, ex.Message);
            throw new PeerProtocolException($"Node {peer.NodeId} sent a state this node refuses ({ex.Reason}): {ex.Message}", PeerErrorCode.Rejected, ex);
        }
    }

    public void Dispose()
    {
        _gate.Dispose();
        control.Dispose();
    }
}
