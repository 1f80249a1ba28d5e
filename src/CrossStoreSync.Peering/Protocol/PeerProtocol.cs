using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;

namespace CrossStoreSync.Peering.Protocol;

/// <summary>
/// Constants and signed byte strings of the peer protocol, version 1 (docs/peering.md). Every signature is over a
/// domain-separated byte string, so a signature made for one purpose (a handshake, a request, a frame) cannot be
/// presented for another.
/// </summary>
internal static class PeerProtocol
{
    public const int Version = 1;
    public const string Name = "css-peer/1";
    public const int NonceLength = 32;
    public const int IdLength = 16;
    public const int SignatureLength = 64;

    public const string HelloPath = "/v1/hello";
    public const string SessionPath = "/v1/session";
    public const string ChangesPath = "/v1/changes";
    public const string WatermarkPath = "/v1/watermark";
    public const string LeavesPath = "/v1/merkle/leaves";
    public const string DigestsPath = "/v1/merkle/digests";
    public const string StatesPath = "/v1/states";

    public const string SessionHeader = "CSS-Session";
    public const string SequenceHeader = "CSS-Seq";
    public const string SignatureHeader = "CSS-Signature";
    public const string FrameContentType = "application/vnd.crossstoresync.frames";

    private static readonly byte[] HandshakeDomain = Encoding.ASCII.GetBytes("CSS-PEER/1 HANDSHAKE\0");
    private static readonly byte[] RequestDomain = Encoding.ASCII.GetBytes("CSS-PEER/1 REQUEST\0");

    /// <summary>
    /// The handshake transcript both sides sign: protocol version, both node ids, both public keys, both nonces, both
    /// clocks and the handshake id. The server signs it with role byte <c>S</c>, the client with <c>C</c>.
    /// </summary>
    public static byte[] Transcript(char role, HandshakeParty client, HandshakeParty server, ReadOnlySpan<byte> handshakeId)
    {
        var buffer = new byte[HandshakeDomain.Length + 1 + 2 + (2 * (1 + 32 + NonceLength + 8)) + IdLength];
        var span = buffer.AsSpan();
        HandshakeDomain.CopyTo(span);
        var at = HandshakeDomain.Length;
        span[at++] = (byte)role;
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], Version);
        at += 2;
        at = Write(span, at, client);
        at = Write(span, at, server);
        handshakeId.CopyTo(span[at..]);
        return buffer;

        static int Write(Span<byte> span, int at, HandshakeParty party)
        {
            span[at++] = (byte)party.NodeId;
            party.PublicKey.CopyTo(span[at..]);
            at += 32;
            party.Nonce.CopyTo(span[at..]);
            at += NonceLength;
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], party.TimeMs);
            return at + 8;
        }
    }

    /// <summary>The bytes a client signs for a request in a session: session, sequence, method, path and body hash.</summary>
    public static byte[] RequestToSign(ReadOnlySpan<byte> session, long sequence, string method, string path, ReadOnlySpan<byte> body)
    {
        var text = Encoding.UTF8.GetBytes(method + "\0" + path + "\0");
        var buffer = new byte[RequestDomain.Length + IdLength + 8 + text.Length + 32];
        var span = buffer.AsSpan();
        RequestDomain.CopyTo(span);
        var at = RequestDomain.Length;
        session.CopyTo(span[at..]);
        at += IdLength;
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], sequence);
        at += 8;
        text.CopyTo(span[at..]);
        at += text.Length;
        SHA256.HashData(body, span[at..]);
        return buffer;
    }
}

/// <summary>One side's contribution to the handshake transcript.</summary>
internal readonly record struct HandshakeParty(int NodeId, byte[] PublicKey, byte[] Nonce, long TimeMs);

/// <summary>The client's first message.</summary>
internal sealed record HelloRequest(
    [property: JsonPropertyName("protocol")] string Protocol,
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("nonce")] string Nonce,
    [property: JsonPropertyName("time")] long Time);

/// <summary>The server's answer: its identity, nonce and clock, and its signature over the transcript.</summary>
internal sealed record HelloResponse(
    [property: JsonPropertyName("protocol")] string Protocol,
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("nonce")] string Nonce,
    [property: JsonPropertyName("time")] long Time,
    [property: JsonPropertyName("handshake")] string Handshake,
    [property: JsonPropertyName("signature")] string Signature);

/// <summary>The client's signature over the same transcript, which opens the session.</summary>
internal sealed record SessionRequest(
    [property: JsonPropertyName("handshake")] string Handshake,
    [property: JsonPropertyName("signature")] string Signature);

/// <summary>The session id.</summary>
internal sealed record SessionResponse([property: JsonPropertyName("session")] string Session);

/// <summary>A pull: the puller's cursor on the server's log.</summary>
internal sealed record ChangesRequest(
    [property: JsonPropertyName("log")] string? LogId,
    [property: JsonPropertyName("after")] long After,
    [property: JsonPropertyName("fingerprint")] long Fingerprint,
    [property: JsonPropertyName("waitMs")] int WaitMs);

/// <summary>A request for the leaves of a collection's Merkle tree.</summary>
internal sealed record LeavesRequest(
    [property: JsonPropertyName("collection")] string Collection,
    [property: JsonPropertyName("depth")] int Depth);

/// <summary>A request for the state digests of some leaves.</summary>
internal sealed record DigestsRequest(
    [property: JsonPropertyName("collection")] string Collection,
    [property: JsonPropertyName("depth")] int Depth,
    [property: JsonPropertyName("leaves")] int[] Leaves);

/// <summary>A request for the current states of some keys.</summary>
internal sealed record StatesRequest(
    [property: JsonPropertyName("collection")] string Collection,
    [property: JsonPropertyName("ids")] string[] Ids);

/// <summary>An error answer.</summary>
internal sealed record ErrorResponse(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("message")] string Message);

[JsonSerializable(typeof(HelloRequest))]
[JsonSerializable(typeof(HelloResponse))]
[JsonSerializable(typeof(SessionRequest))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(ChangesRequest))]
[JsonSerializable(typeof(LeavesRequest))]
[JsonSerializable(typeof(DigestsRequest))]
[JsonSerializable(typeof(StatesRequest))]
[JsonSerializable(typeof(ErrorResponse))]
internal sealed partial class PeerJson : JsonSerializerContext;
