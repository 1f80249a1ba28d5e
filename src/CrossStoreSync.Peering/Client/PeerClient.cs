using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CrossStoreSync.Errors;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Protocol;
using CrossStoreSync.Peering.Telemetry;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Client;

/// <summary>
/// One authenticated session with a peer: the handshake (the peer proves its key by signing the whole transcript, this
/// node answers with its own signature over it), then signed requests, one at a time, whose answers are accepted frame
/// by frame only when signed by the peer, in this session, for this request, at the next index and with an intact body.
/// </summary>
internal sealed class PeerClient(PeerInfo peer, PeerDirectory directory, HttpClient http, TimeProvider time, PeeringMetrics metrics, ILogger logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _session;
    private long _sequence;

    public PeerInfo Peer => peer;

    /// <summary>Bytes received in answers (frames and handshake bodies) since creation.</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>Bytes sent in requests since creation.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Requests made since creation, handshakes included.</summary>
    public int RoundTrips => Volatile.Read(ref _roundTrips);

    private long _bytesReceived;
    private long _bytesSent;
    private int _roundTrips;

    /// <summary>
    /// Sends one request and hands each frame of the answer to <paramref name="onFrame"/> (until the End frame, which is
    /// not passed). Shakes hands first when there is no session, and once more when the peer no longer knows it.
    /// </summary>
    public async Task RequestAsync<T>(string path, T body, JsonTypeInfo<T> type, TimeSpan timeout, Func<FrameHeader, ReadOnlyMemory<byte>, Task> onFrame, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                var session = _session ?? await HandshakeAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await SendAsync(session, path, JsonSerializer.SerializeToUtf8Bytes(body, type), timeout, onFrame, cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (PeerProtocolException ex) when (ex.Code == PeerErrorCode.Unauthorized && attempt == 0)
                {
                    // The peer restarted or the session expired: one new handshake, then the error stands.
                    _session = null;
                }
                catch
                {
                    // A failed answer leaves the session's state unknown (a frame may be half read): start afresh.
                    _session = null;
                    throw;
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task SendAsync(byte[] session, string path, byte[] payload, TimeSpan timeout, Func<FrameHeader, ReadOnlyMemory<byte>, Task> onFrame, CancellationToken cancellationToken)
    {
        var sequence = ++_sequence;
        using var request = new HttpRequestMessage(HttpMethod.Post, Relative(path)) { Content = new ByteArrayContent(payload) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(PeerProtocol.SessionHeader, Convert.ToBase64String(session));
        request.Headers.Add(PeerProtocol.SequenceHeader, sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(PeerProtocol.SignatureHeader, Convert.ToBase64String(directory.Identity.Sign(PeerProtocol.RequestToSign(session, sequence, "POST", path, payload))));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var response = await SendCoreAsync(request, payload.Length, deadline.Token, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, deadline.Token).ConfigureAwait(false);
        var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var expected = 0;

        // One frame is read (and its signature checked) ahead while the previous one is handled, so the peer keeps
        // reading its log and sending while this node applies: the two nodes' work overlaps instead of taking turns.
        Task<(FrameHeader Header, byte[] Buffer)>? ahead = ReadFrameAsync(stream, timeout, deadline.Token, cancellationToken, 0);
        try
        {
            while (true)
            {
                // Taken before it is awaited: a frame whose buffer this loop owns is never handed back twice.
                var next = ahead;
                ahead = null;
                var (header, buffer) = await next.ConfigureAwait(false);
                try
                {
                    Interlocked.Add(ref _bytesReceived, FrameHeader.Length + header.BodyLength);
                    metrics.Bytes.Add(FrameHeader.Length + header.BodyLength, PeeringMetrics.Peer(peer.NodeId), new KeyValuePair<string, object?>("direction", "received"));
                    if (!header.Session.AsSpan().SequenceEqual(session) || header.Request != sequence)
                    {
                        throw new PeerProtocolException($"Node {peer.NodeId} sent a frame of another session or request (request {header.Request}, expected {sequence}): replayed.", PeerErrorCode.Replayed);
                    }

                    if (header.Index != expected++)
                    {
                        throw new PeerProtocolException($"Node {peer.NodeId} sent frame {header.Index} where frame {expected - 1} was due: reordered or dropped.", PeerErrorCode.OutOfOrder);
                    }

                    if (header.Kind == FrameKind.End)
                    {
                        return;
                    }

                    ahead = ReadFrameAsync(stream, timeout, deadline.Token, cancellationToken, expected);
                    await onFrame(header, buffer.AsMemory(0, header.BodyLength)).ConfigureAwait(false);
                }
                finally
                {
                    // The handlers decode the body into their own objects and keep no reference to it.
                    FrameHeader.ReturnBuffer(buffer);
                }
            }
        }
        catch
        {
            // The read ahead must not outlive this answer: stop it and observe its end before the response is disposed.
            await deadline.CancelAsync().ConfigureAwait(false);
            try
            {
                if (ahead is not null)
                {
                    FrameHeader.ReturnBuffer((await ahead.ConfigureAwait(false)).Buffer);
                }
            }
            catch (Exception ex) when (ex is PeerProtocolException or OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
            {
                // Its outcome no longer matters: the first failure is the one reported.
            }

            throw;
        }
    }

    private async Task<(FrameHeader Header, byte[] Buffer)> ReadFrameAsync(Stream stream, TimeSpan timeout, CancellationToken deadline, CancellationToken cancellationToken, int read)
    {
        (FrameHeader Header, byte[] Buffer)? frame;
        try
        {
            frame = await FrameHeader.ReadAsync(stream, peer.PublicKey, deadline).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new PeerProtocolException($"The answer of node {peer.NodeId} broke off after {read} frame(s): {ex.Message}", PeerErrorCode.Unreachable, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} did not finish its answer within {timeout}.", PeerErrorCode.Unreachable, ex);
        }

        return frame ?? throw new PeerProtocolException($"The answer of node {peer.NodeId} ended after {read} frame(s) without its End frame.", PeerErrorCode.Truncated);
    }

    private async Task<byte[]> HandshakeAsync(CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(PeerProtocol.NonceLength);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var hello = new HelloRequest(PeerProtocol.Name, directory.NodeId, Convert.ToBase64String(directory.Identity.PublicKey), Convert.ToBase64String(nonce), now);
        var answer = await PostJsonAsync(PeerProtocol.HelloPath, hello, PeerJson.Default.HelloRequest, PeerJson.Default.HelloResponse, cancellationToken).ConfigureAwait(false);
        if (answer.Protocol != PeerProtocol.Name)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} speaks {SafeText.Quote(answer.Protocol, 64)}, this node {PeerProtocol.Name}.", PeerErrorCode.ProtocolVersion);
        }

        var serverKey = Base64(answer.Key, 32);
        if (answer.Node != peer.NodeId || !serverKey.AsSpan().SequenceEqual(peer.PublicKey))
        {
            throw new PeerProtocolException($"The server at {peer.BaseUrl} presented node {answer.Node} with a key that is not the one configured for node {peer.NodeId}.", PeerErrorCode.UnknownKey);
        }

        var skew = Math.Abs(answer.Time - time.GetUtcNow().ToUnixTimeMilliseconds());
        if (skew > (long)directory.Options.MaxClockSkew.TotalMilliseconds)
        {
            throw new PeerProtocolException($"Node {peer.NodeId}'s clock differs from this node's by {skew} ms; at most {directory.Options.MaxClockSkew.TotalMilliseconds:0} ms are allowed.", PeerErrorCode.ClockSkew);
        }

        var handshakeId = Base64(answer.Handshake, PeerProtocol.IdLength);
        var client = new HandshakeParty(directory.NodeId, directory.Identity.PublicKey, nonce, now);
        var server = new HandshakeParty(answer.Node, serverKey, Base64(answer.Nonce, PeerProtocol.NonceLength), answer.Time);
        if (!NodeIdentity.Verify(peer.PublicKey, PeerProtocol.Transcript('S', client, server, handshakeId), Base64(answer.Signature, PeerProtocol.SignatureLength)))
        {
            throw new PeerProtocolException($"Node {peer.NodeId}'s handshake signature does not verify over this handshake's transcript.", PeerErrorCode.HandshakeFailed);
        }

        var confirm = new SessionRequest(answer.Handshake, Convert.ToBase64String(directory.Identity.Sign(PeerProtocol.Transcript('C', client, server, handshakeId))));
        var opened = await PostJsonAsync(PeerProtocol.SessionPath, confirm, PeerJson.Default.SessionRequest, PeerJson.Default.SessionResponse, cancellationToken).ConfigureAwait(false);
        _session = Base64(opened.Session, PeerProtocol.IdLength);
        _sequence = 0;
        PeeringLog.SessionOpened(logger, peer.NodeId, "client");
        return _session;
    }

    private async Task<TResponse> PostJsonAsync<TRequest, TResponse>(string path, TRequest body, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(body, requestType);
        using var request = new HttpRequestMessage(HttpMethod.Post, Relative(path)) { Content = new ByteArrayContent(payload) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(directory.Options.RequestTimeout);
        using var response = await SendCoreAsync(request, payload.Length, deadline.Token, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, deadline.Token).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync(deadline.Token).ConfigureAwait(false);
        Interlocked.Add(ref _bytesReceived, bytes.Length);
        try
        {
            return JsonSerializer.Deserialize(bytes, responseType) ?? throw new JsonException("empty answer");
        }
        catch (JsonException ex)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} answered {path} with something that is not its JSON: {ex.Message}", PeerErrorCode.Malformed, ex);
        }
    }

    private async Task<HttpResponseMessage> SendCoreAsync(HttpRequestMessage request, int length, CancellationToken deadline, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref _bytesSent, length);
        Interlocked.Increment(ref _roundTrips);
        metrics.Bytes.Add(length, PeeringMetrics.Peer(peer.NodeId), new KeyValuePair<string, object?>("direction", "sent"));
        try
        {
            return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} at {peer.BaseUrl} cannot be reached: {ex.Message}", PeerErrorCode.Unreachable, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PeerProtocolException($"Node {peer.NodeId} at {peer.BaseUrl} did not answer in time.", PeerErrorCode.Unreachable, ex);
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string message;
        try
        {
            var error = await response.Content.ReadFromJsonAsync(PeerJson.Default.ErrorResponse, cancellationToken).ConfigureAwait(false);
            message = error is null ? response.ReasonPhrase ?? string.Empty : $"{error.Error}: {error.Message}";
            // The peer's text goes into this node's exceptions and logs: escaped and bounded, so it cannot forge lines.
            message = SafeText.Text(message);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or IOException or HttpRequestException)
        {
            message = SafeText.Text(response.ReasonPhrase ?? string.Empty);
        }

        var code = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized when message.StartsWith("unknown_key", StringComparison.Ordinal) => PeerErrorCode.UnknownKey,
            HttpStatusCode.Unauthorized when message.StartsWith("handshake_failed", StringComparison.Ordinal) => PeerErrorCode.HandshakeFailed,
            HttpStatusCode.Unauthorized => PeerErrorCode.Unauthorized,
            HttpStatusCode.Forbidden when message.StartsWith("clock_skew", StringComparison.Ordinal) => PeerErrorCode.ClockSkew,
            HttpStatusCode.Forbidden => PeerErrorCode.Forbidden,
            HttpStatusCode.BadRequest when message.StartsWith("protocol", StringComparison.Ordinal) => PeerErrorCode.ProtocolVersion,
            HttpStatusCode.BadRequest => PeerErrorCode.Malformed,
            _ => (int)response.StatusCode >= 500 ? PeerErrorCode.ServerError : PeerErrorCode.Unknown,
        };
        throw new PeerProtocolException($"Node {peer.NodeId} refused the request ({(int)response.StatusCode}): {message}", code);
    }

    private static byte[] Base64(string? text, int length)
    {
        var bytes = new byte[length + 3];
        if (text is null || !Convert.TryFromBase64String(text, bytes, out var written) || written != length)
        {
            throw new PeerProtocolException($"A handshake field is not base64 of {length} bytes.", PeerErrorCode.Malformed);
        }

        return bytes.AsSpan(0, length).ToArray();
    }

    private Uri Relative(string path) => new(peer.BaseUrl, directory.Options.PathPrefix.TrimStart('/') + path);

    public void Dispose() => _gate.Dispose();
}
