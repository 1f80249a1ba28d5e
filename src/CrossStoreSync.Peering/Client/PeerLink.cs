using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Repair;
using CrossStoreSync.Peering.Server;
using CrossStoreSync.Peering.Telemetry;
using CrossStoreSync.Replication;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace CrossStoreSync.Peering.Client;

/// <summary>
/// Replication from one peer: a loop that long-polls the peer's log from this node's cursor and applies every chunk
/// in one transaction with the cursor it ends at, reconnecting with exponential backoff and jitter after a failure.
/// The cursor is the peer's own log position plus its log id and the fingerprint of the entry at it — never a clock —
/// so a late write is never skipped and a peer that was reset or restored is detected (then the sources are compared
/// by Merkle trees and replication continues from the peer's head).
/// </summary>
internal sealed class PeerLink : IDisposable
{
    private readonly PeerInfo _peer;
    private readonly PeerDirectory _directory;
    private readonly PeerClient _pull;
    private readonly PeerRepairer _repairer;
    private readonly IReplicationWriter _writer;
    private readonly AckTracker _acks;
    private readonly PeeringMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PositionWatch _cursorWatch = new();
    private CancellationTokenSource? _backoff;
    private bool _inBackoff;
    private readonly Lock _status = new();
    private PeerCursor _cursor;
    private long _peerHead;
    private long _caughtUpAt;
    private DateTimeOffset? _lastSuccess;
    private string? _lastError;
    private PeerErrorCode? _lastErrorCode;
    private long _received;

    public PeerLink(PeerInfo peer, PeerDirectory directory, PeerClient pull, PeerRepairer repairer, IReplicationWriter writer, AckTracker acks, PeeringMetrics metrics, TimeProvider time, ILogger logger)
    {
        _peer = peer;
        _directory = directory;
        _pull = pull;
        _repairer = repairer;
        _writer = writer;
        _acks = acks;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _caughtUpAt = time.GetTimestamp();
    }

    public PeerInfo Peer => _peer;

    public PeerRepairer Repairer => _repairer;

    public static string CheckpointName(int node) => "peer/" + node.ToString(CultureInfo.InvariantCulture) + "/cursor";

    public long Cursor => _cursorWatch.Value;

    public PeerCursor CurrentCursor
    {
        get
        {
            lock (_status)
            {
                return _cursor;
            }
        }
    }

    /// <summary>Counts cursor changes (resets included), so a waiter can tell that the loop made progress.</summary>
    private readonly PositionWatch _changes = new();
    private Task _repair = Task.CompletedTask;

    /// <summary>
    /// Runs a repair against this peer in the background (one at a time): its server saw that a peer holds a history of
    /// this node's log that this node lost.
    /// </summary>
    public void ScheduleRepair(CancellationToken cancellationToken)
    {
        lock (_status)
        {
            if (!_repair.IsCompleted)
            {
                return;
            }

            _repair = Task.Run(async () =>
            {
                try
                {
                    await _repairer.RepairAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    RecordError("Repair after a reset of this node's log failed: " + ex.Message, ex is PeerProtocolException p ? p.Code : PeerErrorCode.Unknown);
                    PeeringLog.PullFailed(_logger, _peer.NodeId, ex is PeerProtocolException q ? q.Code : PeerErrorCode.Unknown, 1, TimeSpan.Zero, "repair after a reset of this node's log failed: " + ex.Message, null);
                }
            }, CancellationToken.None);
        }
    }

    /// <summary>
    /// Returns once this node holds everything the peer's log held when the call began: the cursor is valid on the
    /// peer's log (a reset has been handled) and at or past its head, and any repair it asked for has finished.
    /// </summary>
    public async Task SyncNowAsync(CancellationToken cancellationToken)
    {
        try
        {
            await SyncNowCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // An exchange the application asked for failed like one of the loop's: status and metrics show it too.
            RecordError(ex.Message, ex is PeerProtocolException p ? p.Code : PeerErrorCode.Unknown);
            throw;
        }
    }

    private async Task SyncNowCoreAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var changes = _changes.Value;
            var cursor = CurrentCursor;
            var (_, head, valid) = await _repairer.WatermarkAsync(cursor, cancellationToken).ConfigureAwait(false);
            Task repair;
            lock (_status)
            {
                repair = _repair;
            }

            await repair.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (valid && cursor.Lsn >= head)
            {
                // The peer answered and this node holds all of it: a success, and the loop leaves any backoff at once.
                RecordSuccess();
                Wake();
                return;
            }

            if (!_peer.Pull)
            {
                await PullOnceAsync(0, cancellationToken).ConfigureAwait(false);
                continue;
            }

            Wake();
            await _changes.WaitForAsync(changes + 1, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var log = await _writer.GetLogAsync(cancellationToken).ConfigureAwait(false);
        _cursor = PeerCursor.Parse(await log.GetCheckpointAsync(CheckpointName(_peer.NodeId), cancellationToken).ConfigureAwait(false));
        _cursorWatch.Advance(_cursor.Lsn);
    }

    public PeerStatus GetStatus()
    {
        lock (_status)
        {
            var cursor = _cursor.Lsn;
            var lag = Math.Max(0, _peerHead - cursor);
            var seconds = lag == 0 ? 0 : _time.GetElapsedTime(Volatile.Read(ref _caughtUpAt)).TotalSeconds;
            return new PeerStatus(_peer.NodeId, _peer.BaseUrl, _cursor.LogId, cursor, _peerHead, lag, seconds, _lastSuccess, _lastError, _lastErrorCode, _acks.Get(_peer.NodeId), Interlocked.Read(ref _received), _pull.BytesReceived + _repairer.Client.BytesReceived);
        }
    }

    /// <summary>Wakes the loop out of a backoff wait (an in-flight pull is left alone).</summary>
    public void Wake()
    {
        if (Volatile.Read(ref _inBackoff))
        {
            try
            {
                Volatile.Read(ref _backoff)?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The wait ended on its own meanwhile.
            }
        }
    }

    public ValueTask WaitForCursorAsync(long lsn, CancellationToken cancellationToken) => _cursorWatch.WaitForAsync(lsn, cancellationToken);

    /// <summary>
    /// Pulls until stopped. Failures are retried by a Polly pipeline with exponential backoff and jitter, without limit:
    /// a peer that is down is tried again until it returns, and <see cref="Wake"/> cuts a wait short.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var o = _directory.Options;
        var pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(ex => ex is not OperationCanceledException),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = o.RetryBaseDelay,
                MaxDelay = o.RetryMaxDelay,
                OnRetry = args =>
                {
                    var ex = args.Outcome.Exception!;
                    var code = ex is PeerProtocolException p ? p.Code : PeerErrorCode.Unknown;
                    RecordError(ex.Message, code);
                    PeeringLog.PullFailed(_logger, _peer.NodeId, code, args.AttemptNumber + 1, args.RetryDelay, ex.Message, ex is PeerProtocolException ? null : ex);
                    Volatile.Write(ref _inBackoff, true);
                    return default;
                },
            })
            .Build();
        var waitMs = (int)o.LongPollTimeout.TotalMilliseconds;
        while (!cancellationToken.IsCancellationRequested)
        {
            using var backoff = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Volatile.Write(ref _backoff, backoff);
            try
            {
                await pipeline.ExecuteAsync(
                    async token =>
                    {
                        Volatile.Write(ref _inBackoff, false);
                        await PullOnceAsync(waitMs, token).ConfigureAwait(false);
                    },
                    backoff.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Woken out of a backoff wait: try again at once.
            }
            catch (OperationCanceledException)
            {
                return;
            }
            finally
            {
                Volatile.Write(ref _backoff, null);
            }
        }
    }

    /// <summary>One pull: asks the peer for what follows the cursor (waiting up to <paramref name="waitMs"/> for something new) and applies it.</summary>
    public async Task PullOnceAsync(int waitMs, CancellationToken cancellationToken)
    {
        if (_cursor.LogId is null && _cursor.Lsn == 0)
        {
            // The log id travels in watermarks and resets; a first pull learns it before it saves a cursor.
            var (logId, _, _) = await _repairer.WatermarkAsync(default, cancellationToken).ConfigureAwait(false);
            _cursor = _cursor with { LogId = logId };
        }

        var request = new ChangesRequest(_cursor.LogId, _cursor.Lsn, _cursor.Fingerprint, waitMs);
        PeerCursor? resetTo = null;
        string? resetReason = null;
        var timeout = _directory.Options.RequestTimeout + TimeSpan.FromMilliseconds(waitMs);
        await _pull.RequestAsync(PeerProtocol.ChangesPath, request, PeerJson.Default.ChangesRequest, timeout, async (header, body) =>
        {
            switch (header.Kind)
            {
                case FrameKind.Chunk:
                    await ApplyChunkAsync(header, body, cancellationToken).ConfigureAwait(false);
                    break;
                case FrameKind.Idle:
                    SetHead(header.Head);
                    break;
                case FrameKind.Reset:
                    resetTo = new PeerCursor(System.Text.Encoding.UTF8.GetString(body.Span), header.To, header.Fingerprint);
                    resetReason = header.Reason.ToString();
                    SetHead(header.Head);
                    break;
                default:
                    throw new PeerProtocolException($"Node {_peer.NodeId} answered a pull with a {header.Kind} frame.", PeerErrorCode.Malformed);
            }
        }, cancellationToken).ConfigureAwait(false);

        if (resetTo is { } target)
        {
            await ResetAsync(target, resetReason!, cancellationToken).ConfigureAwait(false);
        }

        RecordSuccess();
    }

    private async Task ApplyChunkAsync(FrameHeader header, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (header.From != _cursor.Lsn || header.To < header.From)
        {
            throw new PeerProtocolException($"Node {_peer.NodeId} sent the log range ({header.From}, {header.To}] while this node's cursor is at {_cursor.Lsn}: replayed or reordered.", PeerErrorCode.OutOfOrder);
        }

        var states = StateCodec.DecodeStates(body.Span, header.Count);
        var next = _cursor with { Lsn = header.To, Fingerprint = header.Fingerprint };
        try
        {
            await _writer.ApplyAsync(
                new ReplicationBatch(_peer.NodeId, states)
                {
                    Cursor = new LogCheckpoint(CheckpointName(_peer.NodeId), next.ToString()),
                    AllowCollection = _peer.Exchanges,
                    Resolvers = Resolve,
                    MaxClockAhead = _directory.Options.MaxClockSkew,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (ReplicationRejectedException ex)
        {
            PeeringLog.StateRefused(_logger, _peer.NodeId, ex.Reason.ToString(), _cursor.Lsn, ex.Message);
            throw new PeerProtocolException($"Node {_peer.NodeId} sent a state this node refuses ({ex.Reason}): {ex.Message}", PeerErrorCode.Rejected, ex);
        }

        Interlocked.Add(ref _received, states.Count);
        _metrics.Received.Add(states.Count, PeeringMetrics.Peer(_peer.NodeId));
        lock (_status)
        {
            _cursor = next;
        }

        _cursorWatch.Advance(next.Lsn);
        _changes.Advance(_changes.Value + 1);
        SetHead(header.Head);
    }

    /// <summary>The peer cannot serve this node's cursor: compare the sources, then continue from the head it named.</summary>
    private async Task ResetAsync(PeerCursor target, string reason, CancellationToken cancellationToken)
    {
        PeeringLog.CursorReset(_logger, _peer.NodeId, _cursor.Lsn, reason, target.Lsn);

        // The head was taken before the repair reads anything: what the peer writes meanwhile follows the new cursor.
        await _repairer.RepairAsync(cancellationToken).ConfigureAwait(false);
        await _writer.ApplyAsync(new ReplicationBatch(_peer.NodeId, []) { Cursor = new LogCheckpoint(CheckpointName(_peer.NodeId), target.ToString()) }, cancellationToken).ConfigureAwait(false);
        lock (_status)
        {
            _cursor = target;
        }

        // A reset peer's positions may be lower than before: waiters compare against the new log from here on.
        _cursorWatch.Advance(target.Lsn);
        _changes.Advance(_changes.Value + 1);
    }

    public IConflictResolver? Resolve(string collection) => _directory.Options.ConflictResolvers.TryGetValue(collection, out var resolver) ? resolver : null;

    private void SetHead(long head)
    {
        lock (_status)
        {
            _peerHead = head;
            if (_cursor.Lsn >= head)
            {
                Volatile.Write(ref _caughtUpAt, _time.GetTimestamp());
            }
        }
    }

    private void RecordSuccess()
    {
        lock (_status)
        {
            _lastSuccess = _time.GetUtcNow();
            _lastError = null;
            _lastErrorCode = null;
        }
    }

    private void RecordError(string message, PeerErrorCode code)
    {
        _metrics.Errors.Add(1, PeeringMetrics.Peer(_peer.NodeId), new KeyValuePair<string, object?>("code", code.ToString()));
        lock (_status)
        {
            _lastError = message;
            _lastErrorCode = code;
        }
    }

    public void Dispose()
    {
        _pull.Dispose();
    }
}

/// <summary>A puller's position on a peer's log: the log's id, the last position applied and the checksum of the entry there.</summary>
internal readonly record struct PeerCursor(string? LogId, long Lsn, long Fingerprint)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{LogId};{Lsn};{Fingerprint}");

    public static PeerCursor Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return default;
        }

        var parts = text.Split(';');
        return parts.Length == 3
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var lsn)
            && long.TryParse(parts[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var fingerprint)
            ? new PeerCursor(parts[0].Length == 0 ? null : parts[0], lsn, fingerprint)
            : throw new FormatException($"The saved peer cursor {SafeText.Quote(text)} is not 'logId;lsn;fingerprint'.");
    }
}
