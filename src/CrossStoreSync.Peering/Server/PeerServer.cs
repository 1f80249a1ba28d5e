using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Repair;
using CrossStoreSync.Peering.Telemetry;
using CrossStoreSync.Replication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Server;

/// <summary>
/// The serving side of the peer protocol (docs/peering.md): the two-step handshake, then signed requests in a session
/// answered with signed frames — pulls (long-polled, in bounded chunks), watermarks, Merkle leaves, state digests and
/// states by key. Every request is checked before anything is read from the log.
/// </summary>
internal sealed partial class PeerServer(
    PeerDirectory directory,
    SessionStore sessions,
    AckTracker acks,
    RepairRequests repairs,
    IReplicationWriter writer,
    PeeringMetrics metrics,
    TimeProvider time,
    ILogger<PeerServer> logger,
    Microsoft.Extensions.Hosting.IHostApplicationLifetime? lifetime = null)
{
    private const int MaxRequestBytes = 1024 * 1024;
    private const int MaxIdsPerRequest = 10_000;

    public async Task HelloAsync(HttpContext context)
    {
        var request = await ReadJsonAsync(context, PeerJson.Default.HelloRequest).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }

        if (request.Protocol != PeerProtocol.Name)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "protocol", $"This node speaks {PeerProtocol.Name}, not {SafeText.Quote(request.Protocol, 64)}.").ConfigureAwait(false);
            return;
        }

        byte[] clientKey, clientNonce;
        try
        {
            clientKey = Decode(request.Key, 32, "key");
            clientNonce = Decode(request.Nonce, PeerProtocol.NonceLength, "nonce");
        }
        catch (FormatException ex)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", SafeText.Text(ex.Message)).ConfigureAwait(false);
            return;
        }

        var peer = directory.Authenticate(request.Node, clientKey);
        if (peer is null)
        {
            PeeringLog.HandshakeRefused(logger, request.Node, "unknown node or key");
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "unknown_key", $"Node {request.Node} with this public key is not a configured peer of node {directory.NodeId}.").ConfigureAwait(false);
            return;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (Math.Abs(now - request.Time) > (long)directory.Options.MaxClockSkew.TotalMilliseconds)
        {
            PeeringLog.HandshakeRefused(logger, request.Node, $"clock differs by {now - request.Time} ms");
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "clock_skew", $"Node {request.Node}'s clock differs from node {directory.NodeId}'s by {now - request.Time} ms; at most {directory.Options.MaxClockSkew.TotalMilliseconds:0} ms are allowed.").ConfigureAwait(false);
            return;
        }

        var serverNonce = System.Security.Cryptography.RandomNumberGenerator.GetBytes(PeerProtocol.NonceLength);
        var client = new HandshakeParty(peer.NodeId, clientKey, clientNonce, request.Time);
        var server = new HandshakeParty(directory.NodeId, directory.Identity.PublicKey, serverNonce, now);

        // The handshake id is part of the transcript, so it is chosen before either side signs.
        var handshakeId = System.Security.Cryptography.RandomNumberGenerator.GetBytes(PeerProtocol.IdLength);
        var clientTranscript = PeerProtocol.Transcript('C', client, server, handshakeId);
        var id = sessions.BeginHandshake(peer, clientTranscript, handshakeId);
        var signature = directory.Identity.Sign(PeerProtocol.Transcript('S', client, server, handshakeId));
        await WriteJsonAsync(context, new HelloResponse(PeerProtocol.Name, directory.NodeId, Convert.ToBase64String(directory.Identity.PublicKey), Convert.ToBase64String(serverNonce), now, id, Convert.ToBase64String(signature)), PeerJson.Default.HelloResponse).ConfigureAwait(false);
    }

    public async Task SessionAsync(HttpContext context)
    {
        var request = await ReadJsonAsync(context, PeerJson.Default.SessionRequest).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }

        var pending = sessions.TakeHandshake(request.Handshake ?? string.Empty);
        byte[] signature;
        try
        {
            signature = Decode(request.Signature, PeerProtocol.SignatureLength, "signature");
        }
        catch (FormatException ex)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", SafeText.Text(ex.Message)).ConfigureAwait(false);
            return;
        }

        if (pending is null || !NodeIdentity.Verify(pending.Peer.PublicKey, pending.ClientTranscript, signature))
        {
            var reason = pending is null ? "unknown, used or expired handshake (a replayed confirmation finds nothing)" : "the transcript signature does not verify";
            PeeringLog.HandshakeRefused(logger, pending?.Peer.NodeId ?? -1, reason);
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "handshake_failed", "Handshake refused: " + reason + ".").ConfigureAwait(false);
            return;
        }

        var session = sessions.Open(pending.Peer);
        PeeringLog.SessionOpened(logger, pending.Peer.NodeId, "server");
        await WriteJsonAsync(context, new SessionResponse(Convert.ToBase64String(session.Id)), PeerJson.Default.SessionResponse).ConfigureAwait(false);
    }

    public Task ChangesAsync(HttpContext context) => AuthenticatedAsync(context, PeerProtocol.ChangesPath, PeerJson.Default.ChangesRequest, ServeChangesAsync);

    public Task WatermarkAsync(HttpContext context) => AuthenticatedAsync(context, PeerProtocol.WatermarkPath, PeerJson.Default.ChangesRequest, ServeWatermarkAsync);

    public Task LeavesAsync(HttpContext context) => AuthenticatedAsync(context, PeerProtocol.LeavesPath, PeerJson.Default.LeavesRequest, ServeLeavesAsync);

    public Task DigestsAsync(HttpContext context) => AuthenticatedAsync(context, PeerProtocol.DigestsPath, PeerJson.Default.DigestsRequest, ServeDigestsAsync);

    public Task StatesAsync(HttpContext context) => AuthenticatedAsync(context, PeerProtocol.StatesPath, PeerJson.Default.StatesRequest, ServeStatesAsync);

    private async Task ServeChangesAsync(HttpContext context, ServerSession session, FrameSink frames, ChangesRequest request)
    {
        var peer = session.Peer;
        var log = await writer.GetLogAsync(context.RequestAborted).ConfigureAwait(false);
        var logId = await log.GetLogIdAsync(context.RequestAborted).ConfigureAwait(false);
        var after = request.After;
        var head = await HeadAsync(log, after, context.RequestAborted).ConfigureAwait(false);
        var reset = await CheckCursorAsync(log, logId, request, head, context.RequestAborted).ConfigureAwait(false);
        if (reset != ResetReason.None)
        {
            NoteReset(peer, request, reset);
            // The puller compares sources by Merkle trees, then continues from this head: it needs the head's fingerprint.
            var headFingerprint = head == 0 ? 0 : await log.GetFingerprintAsync(head, context.RequestAborted).ConfigureAwait(false) ?? 0;
            await frames.WriteAsync(FrameKind.Reset, reset, after, head, headFingerprint, head, 0, Encoding.UTF8.GetBytes(logId)).ConfigureAwait(false);
            await frames.EndAsync(head).ConfigureAwait(false);
            return;
        }

        // The puller saved this cursor with the states before it: everything up to it is acknowledged.
        acks.Acknowledge(peer.NodeId, after);
        if (head <= after)
        {
            var wait = TimeSpan.FromMilliseconds(Math.Clamp(request.WaitMs, 0, (int)directory.Options.LongPollTimeout.TotalMilliseconds));
            // A stopping host answers its long polls at once instead of holding its shutdown for them.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime?.ApplicationStopping ?? CancellationToken.None);
            timeout.CancelAfter(wait);
            try
            {
                await writer.WaitForHeadAsync(after, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                await frames.WriteAsync(FrameKind.Idle, ResetReason.None, after, after, request.Fingerprint, writer.Head, 0, ReadOnlyMemory<byte>.Empty).ConfigureAwait(false);
                await frames.EndAsync(writer.Head).ConfigureAwait(false);
                return;
            }
        }

        var states = new List<ReplicatedState>();
        var budget = directory.Options.EntriesPerPull;
        while (budget > 0)
        {
            states.Clear();
            var read = await log.ReadReplicationAsync(after, Math.Min(directory.Options.ChunkEntries, budget), peer.NodeId, peer.Exchanges, states, context.RequestAborted).ConfigureAwait(false);
            if (read.ReadThrough <= after)
            {
                break;
            }

            await WriteChunksAsync(log, frames, states, after, read, context.RequestAborted).ConfigureAwait(false);
            budget -= (int)Math.Min(budget, read.ReadThrough - after);
            after = read.ReadThrough;
            if (after >= writer.Head)
            {
                break;
            }
        }

        await frames.EndAsync(writer.Head).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends the states of one read in frames of at most <see cref="PeeringOptions.ChunkBytes"/>. A split frame ends at
    /// the log position of its last state: every key whose newest entry lies after it travels in a later frame, so a
    /// puller cut off between frames loses nothing when it resumes from the frame's end.
    /// </summary>
    private async Task WriteChunksAsync(IReplicationLog log, FrameSink frames, List<ReplicatedState> states, long after, ReplicationReadResult read, CancellationToken cancellationToken)
    {
        var start = 0;
        var from = after;
        while (true)
        {
            var end = StateCodec.ChunkEnd(states, start, directory.Options.ChunkBytes, out var bytes);
            var last = end == states.Count;
            var to = last ? read.ReadThrough : states[end - 1].Lsn;
            var fingerprint = last ? read.Fingerprint : await log.GetFingerprintAsync(to, cancellationToken).ConfigureAwait(false) ?? 0;
            await frames.WriteStatesAsync(FrameKind.Chunk, from, to, fingerprint, read.Head, states, start, end, bytes).ConfigureAwait(false);
            if (last)
            {
                return;
            }

            from = to;
            start = end;
        }
    }

    private static async ValueTask<ResetReason> CheckCursorAsync(IReplicationLog log, string logId, ChangesRequest request, long head, CancellationToken cancellationToken)
    {
        if (request.After < 0)
        {
            return ResetReason.BeyondHead;
        }

        if (request.After == 0)
        {
            // A puller starting from scratch needs the log from its first entry.
            return head == 0 || await log.GetFingerprintAsync(1, cancellationToken).ConfigureAwait(false) is not null ? ResetReason.None : ResetReason.Truncated;
        }

        if (!string.Equals(request.LogId, logId, StringComparison.Ordinal))
        {
            return ResetReason.LogChanged;
        }

        if (request.After > head)
        {
            return ResetReason.BeyondHead;
        }

        var fingerprint = await log.GetFingerprintAsync(request.After, cancellationToken).ConfigureAwait(false);
        return fingerprint is null ? ResetReason.Truncated : fingerprint != request.Fingerprint ? ResetReason.FingerprintMismatch : ResetReason.None;
    }

    /// <summary>
    /// The head a pull is answered from. The engine's head follows the log a moment behind (it moves once a commit has
    /// returned, and learns other processes' appends when its dispatchers poll), while a pull may already have served
    /// entries up to the log's own last position. A cursor there is valid — calling it "beyond the head" would reset the
    /// puller and start a Merkle comparison on both nodes — and a cursor at the engine's head may still have entries
    /// after it, which are sent instead of waiting a long poll for them. The log is asked only in those two cases.
    /// </summary>
    private ValueTask<long> HeadAsync(IReplicationLog log, long after, CancellationToken cancellationToken) =>
        after >= writer.Head ? LogHeadAsync(log, cancellationToken) : ValueTask.FromResult(writer.Head);

    /// <summary>The newer of the engine's head and the log's own last position.</summary>
    private async ValueTask<long> LogHeadAsync(IReplicationLog log, CancellationToken cancellationToken)
    {
        var head = writer.Head;
        return Math.Max(head, await log.GetLastLsnAsync(cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// A peer whose cursor this log no longer serves saw a history of this log that this node has lost (it was reset,
    /// re-created or restored from an older copy): states it received from this node are not sent back by its log
    /// (no echo), so this node compares sources with it by Merkle trees to take its lost states back.
    /// </summary>
    private void NoteReset(PeerInfo peer, ChangesRequest request, ResetReason reason)
    {
        if (request.After > 0 && reason is ResetReason.LogChanged or ResetReason.FingerprintMismatch or ResetReason.BeyondHead)
        {
            repairs.Request(peer.NodeId);
        }
    }

    /// <summary>The log's id and head, and whether the caller's cursor (if any) is still valid on this log.</summary>
    private async Task ServeWatermarkAsync(HttpContext context, ServerSession session, FrameSink frames, ChangesRequest request)
    {
        var log = await writer.GetLogAsync(context.RequestAborted).ConfigureAwait(false);
        var logId = await log.GetLogIdAsync(context.RequestAborted).ConfigureAwait(false);
        // The log's own head, not only the engine's: SyncNowAsync waits for everything the log held when it asked.
        var head = await LogHeadAsync(log, context.RequestAborted).ConfigureAwait(false);
        var reset = request.LogId is null ? ResetReason.None : await CheckCursorAsync(log, logId, request, head, context.RequestAborted).ConfigureAwait(false);
        if (reset != ResetReason.None)
        {
            NoteReset(session.Peer, request, reset);
        }

        await frames.WriteAsync(FrameKind.Watermark, reset, 0, head, 0, head, 0, Encoding.UTF8.GetBytes(logId)).ConfigureAwait(false);
        await frames.EndAsync(head).ConfigureAwait(false);
    }

    private async Task ServeLeavesAsync(HttpContext context, ServerSession session, FrameSink frames, LeavesRequest request)
    {
        if (!await CheckTreeRequestAsync(context, session, request.Collection, request.Depth).ConfigureAwait(false))
        {
            return;
        }

        var log = await writer.GetLogAsync(context.RequestAborted).ConfigureAwait(false);
        var tree = await SourceTrees.BuildAsync(log, request.Collection, request.Depth, context.RequestAborted).ConfigureAwait(false);
        var leaves = SourceTrees.Level(tree, request.Depth);

        await frames.WriteAsync(FrameKind.Leaves, ResetReason.None, 0, tree.EntryCount, 0, writer.Head, leaves.Length, StateCodec.EncodeLeaves(leaves)).ConfigureAwait(false);
        await frames.EndAsync(writer.Head).ConfigureAwait(false);
    }

    private async Task ServeDigestsAsync(HttpContext context, ServerSession session, FrameSink frames, DigestsRequest request)
    {
        if (!await CheckTreeRequestAsync(context, session, request.Collection, request.Depth).ConfigureAwait(false))
        {
            return;
        }

        var leafCount = 1 << request.Depth;
        var leaves = (request.Leaves ?? []).Distinct().Order().ToArray();
        if (leaves.Length > 0 && (leaves[0] < 0 || leaves[^1] >= leafCount))
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", $"Leaf indices must be in 0..{leafCount - 1}.").ConfigureAwait(false);
            return;
        }

        var log = await writer.GetLogAsync(context.RequestAborted).ConfigureAwait(false);
        var digests = await SourceTrees.ReadLeavesAsync(log, request.Collection, request.Depth, leaves, context.RequestAborted).ConfigureAwait(false);
        const int PerFrame = 16_384;
        for (var i = 0; i < digests.Count; i += PerFrame)
        {
            var slice = digests.GetRange(i, Math.Min(PerFrame, digests.Count - i));
            await frames.WriteAsync(FrameKind.Digests, ResetReason.None, 0, 0, 0, writer.Head, slice.Count, StateCodec.EncodeDigests(slice)).ConfigureAwait(false);
        }

        await frames.EndAsync(writer.Head).ConfigureAwait(false);
    }

    private async Task ServeStatesAsync(HttpContext context, ServerSession session, FrameSink frames, StatesRequest request)
    {
        if (!await CheckCollectionAsync(context, session, request.Collection).ConfigureAwait(false))
        {
            return;
        }

        var ids = request.Ids ?? [];
        if (ids.Length > MaxIdsPerRequest)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", $"At most {MaxIdsPerRequest} ids per request; got {ids.Length}.").ConfigureAwait(false);
            return;
        }

        EntityKey[] keys;
        try
        {
            keys = ids.Select(id => new EntityKey(request.Collection, id)).ToArray();
        }
        catch (ArgumentException ex)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", SafeText.Text(ex.Message)).ConfigureAwait(false);
            return;
        }

        var log = await writer.GetLogAsync(context.RequestAborted).ConfigureAwait(false);
        var stored = await log.ReadStatesAsync(keys, context.RequestAborted).ConfigureAwait(false);
        var states = stored.Select(s => new ReplicatedState(0, s.Change, s.History)).ToList();
        var start = 0;
        while (start < states.Count)
        {
            var end = StateCodec.ChunkEnd(states, start, directory.Options.ChunkBytes, out var bytes);
            await frames.WriteStatesAsync(FrameKind.States, 0, 0, 0, writer.Head, states, start, end, bytes).ConfigureAwait(false);
            start = end;
        }

        await frames.EndAsync(writer.Head).ConfigureAwait(false);
    }

    private async Task<bool> CheckTreeRequestAsync(HttpContext context, ServerSession session, string collection, int depth)
    {
        if (depth is < MerkleTree.MinDepth or > 20)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", $"Tree depth {depth} is outside {MerkleTree.MinDepth}..20.").ConfigureAwait(false);
            return false;
        }

        return await CheckCollectionAsync(context, session, collection).ConfigureAwait(false);
    }

    private async Task<bool> CheckCollectionAsync(HttpContext context, ServerSession session, string collection)
    {
        if (collection is null || !session.Peer.Exchanges(collection))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "forbidden", $"Collection {SafeText.Quote(collection, 64)} is not exchanged with node {session.Peer.NodeId}.").ConfigureAwait(false);
            return false;
        }

        return true;
    }

    /// <summary>Checks the session, the request sequence and the request signature, then runs the handler.</summary>
    private async Task AuthenticatedAsync<T>(HttpContext context, string path, JsonTypeInfo<T> type, Func<HttpContext, ServerSession, FrameSink, T, Task> handler)
        where T : class
    {
        var body = await ReadBodyAsync(context).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        var headers = context.Request.Headers;
        var sessionId = headers[PeerProtocol.SessionHeader].ToString();
        var signatureText = headers[PeerProtocol.SignatureHeader].ToString();
        if (!long.TryParse(headers[PeerProtocol.SequenceHeader].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var sequence)
            || !Convert.TryFromBase64String(sessionId, new byte[PeerProtocol.IdLength], out var idLength) || idLength != PeerProtocol.IdLength)
        {
            await UnauthorizedAsync(context, "missing or malformed session headers").ConfigureAwait(false);
            return;
        }

        var session = sessions.Use(sessionId, sequence, s => VerifyRequest(s, sequence, path, body, signatureText), out var reason);
        if (session is null)
        {
            await UnauthorizedAsync(context, reason).ConfigureAwait(false);
            return;
        }

        T? request;
        try
        {
            request = JsonSerializer.Deserialize(body, type);
        }
        catch (JsonException ex)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", "The request is not valid JSON: " + SafeText.Text(ex.Message)).ConfigureAwait(false);
            return;
        }

        if (request is null)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", "The request body is empty.").ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = PeerProtocol.FrameContentType;
        context.Response.Headers.CacheControl = "no-store";
        var frames = new FrameSink(context.Response.Body, session.Id, sequence, directory.Identity, metrics, session.Peer.NodeId, context.RequestAborted);
        try
        {
            await handler(context, session, frames, request).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !context.Response.HasStarted)
        {
            PeeringLog.ServeFailed(logger, session.Peer.NodeId, SafeText.Text(ex.Message), ex);
            await RefuseAsync(context, StatusCodes.Status500InternalServerError, "server_error", SafeText.Text(ex.Message)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Frames are on the wire already: end the answer without its End frame, which the puller reports as truncated.
            PeeringLog.ServeFailed(logger, session.Peer.NodeId, SafeText.Text(ex.Message), ex);
            context.Abort();
        }
    }

    private static bool VerifyRequest(ServerSession session, long sequence, string path, byte[] body, string signatureText)
    {
        var signature = new byte[PeerProtocol.SignatureLength];
        return Convert.TryFromBase64String(signatureText, signature, out var length) && length == PeerProtocol.SignatureLength
            && NodeIdentity.Verify(session.Peer.PublicKey, PeerProtocol.RequestToSign(session.Id, sequence, "POST", path, body), signature);
    }

    private async Task UnauthorizedAsync(HttpContext context, string reason)
    {
        PeeringLog.RequestRefused(logger, context.Connection.RemoteIpAddress?.ToString() ?? "?", reason);
        await RefuseAsync(context, StatusCodes.Status401Unauthorized, "unauthorized", "Request refused: " + reason + ". Shake hands again.").ConfigureAwait(false);
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext context)
    {
        var length = context.Request.ContentLength;
        if (length > MaxRequestBytes)
        {
            await RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, "too_large", $"Requests are limited to {MaxRequestBytes} bytes.").ConfigureAwait(false);
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        while (true)
        {
            var memory = buffer.GetMemory(4096);
            var read = await context.Request.Body.ReadAsync(memory, context.RequestAborted).ConfigureAwait(false);
            if (read == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > MaxRequestBytes)
            {
                await RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, "too_large", $"Requests are limited to {MaxRequestBytes} bytes.").ConfigureAwait(false);
                return null;
            }
        }
    }

    private static async Task<T?> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : class
    {
        var body = await ReadBodyAsync(context).ConfigureAwait(false);
        if (body is null)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(body, type) ?? throw new JsonException("empty body");
        }
        catch (JsonException ex)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "malformed", "The request is not valid JSON: " + SafeText.Text(ex.Message)).ConfigureAwait(false);
            return null;
        }
    }

    private static async Task WriteJsonAsync<T>(HttpContext context, T value, JsonTypeInfo<T> type)
    {
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted).ConfigureAwait(false);
    }

    private static Task RefuseAsync(HttpContext context, int status, string error, string message)
    {
        context.Response.StatusCode = status;
        return WriteJsonAsync(context, new ErrorResponse(error, message), PeerJson.Default.ErrorResponse);
    }

    private static byte[] Decode(string? text, int length, string field)
    {
        var bytes = new byte[length + 3];
        if (text is null || !Convert.TryFromBase64String(text, bytes, out var written) || written != length)
        {
            throw new FormatException($"Field '{field}' must be base64 of {length} bytes.");
        }

        return bytes.AsSpan(0, length).ToArray();
    }

}
