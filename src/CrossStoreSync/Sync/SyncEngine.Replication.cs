using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Sync;

internal sealed partial class SyncEngine : IReplicationWriter
{
    private readonly CursorWatch _headWatch = new();
    private Func<EntityChange, EntityChange>? _restampFunc;

    public int NodeId => _options.NodeId;

    long IReplicationWriter.Head => Head;

    /// <summary>Gives a write a fresh version from this node's clock (see <see cref="IReplicationLog.AppendAndApplyAsync(EntityChange[], LogCheckpoint?, Func{EntityChange, EntityChange}, CancellationToken)"/>).</summary>
    private Func<EntityChange, EntityChange> Restamp => _restampFunc ??= change =>
    {
        var version = _clock.Now();
        var restamped = change.Entity is { } entity ? EntityChange.Upsert(entity, version, change.ContentHash) : EntityChange.Delete(change.Key, version);
        return change.Origin is { } origin ? restamped.WithOrigin(origin) : restamped;
    };

    public async ValueTask<IReplicationLog> GetLogAsync(CancellationToken cancellationToken = default)
    {
        await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return Topology.Coupled as IReplicationLog ?? throw new ReplicationNotSupportedException(
            $"Replication between nodes needs a change log that commits with its source of truth and keeps causal histories (UseSqlite or UsePostgreSql); the configured log is {Topology.Log.GetType().Name} with source {SafeText.Quote(Topology.Source.Name)}.");
    }

    public ValueTask WaitForHeadAsync(long afterLsn, CancellationToken cancellationToken = default) =>
        Head > afterLsn ? ValueTask.CompletedTask : _headWatch.WaitForAsync(afterLsn + 1, cancellationToken);

    public async ValueTask<ReplicationWriteResult> ApplyAsync(ReplicationBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.States);
        var log = await GetLogAsync(cancellationToken).ConfigureAwait(false);
        if (batch.States.Count == 0)
        {
            if (batch.Cursor is { } cursor)
            {
                await log.SetCheckpointAsync(cursor.Name, cursor.Value, cancellationToken).ConfigureAwait(false);
            }

            return new ReplicationWriteResult(null, 0, 0, 0, []);
        }

        var newest = ValidateReplicated(batch);

        // Observed before the batch commits: a local write that takes its version after this is newer than every
        // received state, and one that took it before is restamped if the source already holds something newer.
        _clock.Observe(newest);
        var detectedAt = _time.GetUtcNow();
        var resolvers = batch.Resolvers;
        ReplicationDecider decide = (incoming, local) => ReplicationDecisions.Decide(
            incoming,
            local,
            batch.FromNode,
            new ValidatingResolver(resolvers?.Invoke(incoming.Change.Key.Collection) ?? LastWriterWinsResolver.Instance, _validator),
            _clock.Now,
            detectedAt);

        var result = await log.ApplyReplicatedAsync(batch.States, batch.FromNode, decide, batch.Cursor, cancellationToken).ConfigureAwait(false);
        int written = 0, merged = 0, ignored = 0;
        var ticketVersion = HlcTimestamp.Zero;
        foreach (var decision in result.Decisions)
        {
            switch (decision.Action)
            {
                case ReplicationAction.Write:
                    written++;
                    ticketVersion = decision.Write!.Version > ticketVersion ? decision.Write.Version : ticketVersion;
                    break;
                case ReplicationAction.MergeHistory:
                    merged++;
                    break;
                default:
                    ignored++;
                    break;
            }
        }

        var peer = batch.FromNode.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _metrics.RecordReplicated(peer, written, merged, ignored);
        SyncTicket? ticket = null;
        if (result.Appended is { } range)
        {
            _metrics.Appended.Add(range.Count);
            AdvanceHead(range.Last);
            WakeDispatchers();
            ticket = new SyncTicket(range, ticketVersion);
        }

        foreach (var conflict in result.Conflicts)
        {
            _metrics.RecordConflict(conflict.Key.Collection, conflict.Resolution);
            SyncLog.ConflictDetected(_logger, SafeText.Quote(conflict.Key), conflict.PeerNodeId, conflict.Loser.Version.ToString(), conflict.Winner.ToString(), conflict.Resolution);
            _events.Publish(new SyncEvent(
                SyncEventKind.ConflictDetected,
                Topology.Source.Name,
                result.Appended?.First ?? 0,
                result.Appended?.Last ?? 0,
                1,
                conflict.Key,
                $"Conflict #{conflict.Id} with node {conflict.PeerNodeId}: {conflict.Resolution}; kept {conflict.Winner}, lost {conflict.Loser.Kind} {conflict.Loser.Version}.",
                0,
                detectedAt));
        }

        return new ReplicationWriteResult(ticket, written, merged, ignored, result.Conflicts);
    }

    /// <summary>Checks every state like a local write, before anything is applied; returns the newest version.</summary>
    private HlcTimestamp ValidateReplicated(ReplicationBatch batch)
    {
        var states = batch.States;
        var keys = new HashSet<EntityKey>(states.Count);
        var newest = HlcTimestamp.Zero;
        var horizonMs = _time.GetUtcNow().ToUnixTimeMilliseconds() + (long)batch.MaxClockAhead.TotalMilliseconds;
        for (var i = 0; i < states.Count; i++)
        {
            var state = states[i] ?? throw new ReplicationRejectedException($"State {i} from node {batch.FromNode} is null.", ReplicationRejectReason.Invalid, batch.FromNode, i, null);
            var change = state.Change ?? throw new ReplicationRejectedException($"State {i} from node {batch.FromNode} has no change.", ReplicationRejectReason.Invalid, batch.FromNode, i, null);
            var key = change.Key;
            var field = $"states[{i}]";
            try
            {
                if (change.Entity is { } entity)
                {
                    _validator.Validate(entity, field);
                }
                else
                {
                    _validator.ValidateKey(key, field);
                }
            }
            catch (ArgumentException ex)
            {
                var reason = _options.TryGetCollection(key.IsDefault ? string.Empty : key.Collection, out _) || key.IsDefault ? ReplicationRejectReason.Invalid : ReplicationRejectReason.Collection;
                throw new ReplicationRejectedException($"State {i} from node {batch.FromNode} ({DescribeKey(key)}) is invalid: {SafeText.Text(ex.Message)}", reason, batch.FromNode, i, key.IsDefault ? null : key, ex);
            }

            if (batch.AllowCollection is { } allow && !allow(key.Collection))
            {
                throw new ReplicationRejectedException($"Node {batch.FromNode} sent {SafeText.Quote(key)}, but collection {SafeText.Quote(key.Collection)} is not exchanged with it.", ReplicationRejectReason.Collection, batch.FromNode, i, key);
            }

            var expected = change.Entity is { } e ? EntityEncoding.ComputeContentHash(e) : UInt128.Zero;
            if (expected != change.ContentHash)
            {
                throw new ReplicationRejectedException($"State {i} from node {batch.FromNode} ({SafeText.Quote(key)}) carries content hash {change.ContentHash:X32}, but its content hashes to {expected:X32}.", ReplicationRejectReason.Hash, batch.FromNode, i, key);
            }

            var version = change.Version;
            if (version == HlcTimestamp.Zero || !state.History.Covers(version) || state.History[version.NodeId] != version || !HistoryAtMost(state.History, version))
            {
                throw new ReplicationRejectedException($"State {i} from node {batch.FromNode} ({SafeText.Quote(key)}) has version {version} and history {state.History}: a history must hold the state's own version as its newest entry.", ReplicationRejectReason.History, batch.FromNode, i, key);
            }

            if (version.WallTimeMs > horizonMs)
            {
                throw new ReplicationRejectedException(
                    $"State {i} from node {batch.FromNode} ({SafeText.Quote(key)}) has version {version}, {version.WallTimeMs - (horizonMs - (long)batch.MaxClockAhead.TotalMilliseconds)} ms ahead of this node's clock; at most {batch.MaxClockAhead.TotalMilliseconds:0} ms are allowed.",
                    ReplicationRejectReason.ClockAhead,
                    batch.FromNode,
                    i,
                    key);
            }

            if (!keys.Add(key))
            {
                throw new ReplicationRejectedException($"Key {SafeText.Quote(key)} appears twice in the batch from node {batch.FromNode} (again at {i}).", ReplicationRejectReason.DuplicateKey, batch.FromNode, i, key);
            }

            newest = version > newest ? version : newest;
        }

        return newest;
    }

    private static bool HistoryAtMost(VersionVector history, HlcTimestamp version)
    {
        foreach (var entry in history.Entries)
        {
            if (entry > version.Value)
            {
                return false;
            }
        }

        return true;
    }

    private static string DescribeKey(EntityKey key) => key.IsDefault ? "no key" : SafeText.Quote(key);

    /// <summary>Validates what a resolver merged, like a local write, so a resolver cannot store what a write could not.</summary>
    private sealed class ValidatingResolver(IConflictResolver inner, Validation.EntityValidator validator) : IConflictResolver
    {
        public ConflictResolution Resolve(ConflictingState older, ConflictingState newer)
        {
            var resolution = inner.Resolve(older, newer);
            if (resolution?.Merged is { } merged)
            {
                validator.Validate(merged, "resolution.Merged");
            }

            return resolution!;
        }
    }
}
