using System.Collections.Concurrent;
using System.Globalization;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Replication;

namespace CrossStoreSync.Peering.Server;

/// <summary>
/// How far each peer has pulled this node's log: every pull carries the puller's cursor, which it saved in the same
/// transaction as the states before it, so the cursor is an acknowledgement. The values wait in memory for
/// <see cref="IPeerReplication.WaitForReplicationAsync"/> and are saved as checkpoints (<c>peer/&lt;node&gt;/acked</c>)
/// by <see cref="FlushAsync"/>, so after a restart truncation is still held back for peers that have not pulled.
/// </summary>
internal sealed class AckTracker(PeerDirectory directory, IReplicationWriter writer)
{
    private readonly ConcurrentDictionary<int, PositionWatch> _acked = new();
    private readonly ConcurrentDictionary<int, long> _saved = new();

    public static string CheckpointName(int node) => "peer/" + node.ToString(CultureInfo.InvariantCulture) + "/acked";

    private readonly SemaphoreSlim _loadGate = new(1, 1);
    private volatile bool _loaded;

    /// <summary>Loads the saved acknowledgements once (before the first pull is served or truncation is asked).</summary>
    public async Task EnsureLoadedAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
        {
            return;
        }

        await _loadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_loaded)
            {
                await LoadAsync(cancellationToken).ConfigureAwait(false);
                _loaded = true;
            }
        }
        finally
        {
            _loadGate.Release();
        }
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var log = await writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
        foreach (var peer in directory.Peers)
        {
            var text = await log.GetCheckpointAsync(CheckpointName(peer.NodeId), cancellationToken).ConfigureAwait(false);
            var value = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var lsn) ? lsn : 0;
            Watch(peer.NodeId).Advance(value);
            _saved[peer.NodeId] = value;
        }
    }

    public long Get(int node) => Watch(node).Value;

    public void Acknowledge(int node, long lsn) => Watch(node).Advance(lsn);

    public ValueTask WaitForAsync(int node, long lsn, CancellationToken cancellationToken) => Watch(node).WaitForAsync(lsn, cancellationToken);

    /// <summary>The lowest acknowledged position over every configured peer: nothing at or below it is needed by any of them.</summary>
    public long LowestAcknowledged() => directory.Peers.Count == 0 ? long.MaxValue : directory.Peers.Min(p => Get(p.NodeId));

    /// <summary>Saves the acknowledgements that moved since the last flush.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (!_loaded)
        {
            return;
        }

        var log = await writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
        foreach (var peer in directory.Peers)
        {
            var value = Get(peer.NodeId);
            if (_saved.GetValueOrDefault(peer.NodeId) != value)
            {
                await log.SetCheckpointAsync(CheckpointName(peer.NodeId), value.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
                _saved[peer.NodeId] = value;
            }
        }
    }

    private PositionWatch Watch(int node) => _acked.GetOrAdd(node, static _ => new PositionWatch());
}

/// <summary>A position that only moves forward and that callers can wait on.</summary>
internal sealed class PositionWatch
{
    private long _value;
    private TaskCompletionSource _moved = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Value => Volatile.Read(ref _value);

    public void Advance(long value)
    {
        var current = Volatile.Read(ref _value);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref _value, value, current);
            if (seen == current)
            {
                Interlocked.Exchange(ref _moved, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                return;
            }

            current = seen;
        }
    }

    public async ValueTask WaitForAsync(long target, CancellationToken cancellationToken)
    {
        while (true)
        {
            // The signal is read before the value, so an advance in between cannot be missed.
            var moved = Volatile.Read(ref _moved).Task;
            if (Value >= target)
            {
                return;
            }

            await moved.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
