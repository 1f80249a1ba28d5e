using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CrossStoreSync.Peering.Protocol;

/// <summary>What a frame carries.</summary>
internal enum FrameKind : byte
{
    /// <summary>States of the log range (From, To]; the puller's cursor moves to To once they are applied.</summary>
    Chunk = 1,

    /// <summary>Nothing new within the long-poll wait.</summary>
    Idle = 2,

    /// <summary>The puller's cursor is not valid on this log (see <see cref="ResetReason"/>).</summary>
    Reset = 3,

    /// <summary>The log's id (body, UTF-8) and head.</summary>
    Watermark = 4,

    /// <summary>The leaves of a Merkle tree.</summary>
    Leaves = 5,

    /// <summary>State digests.</summary>
    Digests = 6,

    /// <summary>States asked for by key.</summary>
    States = 7,

    /// <summary>The last frame of an answer.</summary>
    End = 8,
}

/// <summary>Why a cursor was refused.</summary>
internal enum ResetReason : byte
{
    None = 0,

    /// <summary>The cursor belongs to another log (the peer's log was re-created or replaced).</summary>
    LogChanged = 1,

    /// <summary>The entry at the cursor differs from the one the puller saw (the peer was restored from an older copy).</summary>
    FingerprintMismatch = 2,

    /// <summary>The entries after the cursor were truncated: the puller must compare sources and continue from the head.</summary>
    Truncated = 3,

    /// <summary>The cursor lies beyond the log's head (the peer lost entries).</summary>
    BeyondHead = 4,
}

/// <summary>
/// A frame of a server answer: a fixed header signed by the sender's Ed25519 key over (kind, reason, session, request
/// sequence, frame index, log range, fingerprint, head, count, body length, SHA-256 of the body), then the body. A frame
/// is accepted only in its session, for the request it answers, at the next index and with an intact body.
/// </summary>
internal readonly record struct FrameHeader(
    FrameKind Kind,
    ResetReason Reason,
    byte[] Session,
    long Request,
    int Index,
    long From,
    long To,
    long Fingerprint,
    long Head,
    int Count,
    int BodyLength)
{
    public const int SignedLength = 1 + 1 + PeerProtocol.IdLength + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 32;
    public const int Length = SignedLength + PeerProtocol.SignatureLength;

    /// <summary>The largest body a reader accepts.</summary>
    public const int MaxBodyLength = 64 * 1024 * 1024;

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("CSS-PEER/1 FRAME\0");

    /// <summary>Writes the header (signed) and the body.</summary>
    public async ValueTask WriteAsync(Stream stream, ReadOnlyMemory<byte> body, NodeIdentity identity, CancellationToken cancellationToken)
    {
        var header = new byte[Length];
        WriteSigned(header, body.Span);
        identity.Sign(ToSign(header.AsSpan(0, SignedLength))).CopyTo(header.AsSpan(SignedLength));
        await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        if (!body.IsEmpty)
        {
            await stream.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads one frame; null at the end of the stream. The body is <c>Buffer[..Header.BodyLength]</c> in a buffer rented
    /// from the shared pool (bodies are up to <c>ChunkBytes</c>, 2 MiB by default, which would otherwise be a large-object
    /// allocation per frame): the caller hands it back with <see cref="ReturnBuffer"/> once the body is decoded.
    /// </summary>
    /// <exception cref="PeerProtocolException">The signature, the body hash or the layout is wrong.</exception>
    public static async ValueTask<(FrameHeader Header, byte[] Buffer)?> ReadAsync(Stream stream, byte[] senderKey, CancellationToken cancellationToken)
    {
        var header = new byte[Length];
        var read = await stream.ReadAtLeastAsync(header, Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < Length)
        {
            throw new PeerProtocolException($"The answer ended inside a frame header ({read} of {Length} bytes).", PeerErrorCode.Truncated);
        }

        if (!NodeIdentity.Verify(senderKey, ToSign(header.AsSpan(0, SignedLength)), header.AsSpan(SignedLength)))
        {
            throw new PeerProtocolException("A frame's signature does not verify with the peer's public key: it was altered or not sent by the peer.", PeerErrorCode.BadSignature);
        }

        var parsed = Parse(header);
        if (parsed.BodyLength is < 0 or > MaxBodyLength || parsed.Count < 0)
        {
            throw new PeerProtocolException($"A frame declares a body of {parsed.BodyLength} bytes and {parsed.Count} items; at most {MaxBodyLength} bytes are accepted.", PeerErrorCode.Malformed);
        }

        var buffer = parsed.BodyLength == 0 ? [] : ArrayPool<byte>.Shared.Rent(parsed.BodyLength);
        try
        {
            var body = buffer.AsMemory(0, parsed.BodyLength);
            await stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(body.Span, hash);
            if (!hash.SequenceEqual(header.AsSpan(70, 32)))
            {
                throw new PeerProtocolException("A frame's body does not match the hash its signed header carries: it was altered in transit.", PeerErrorCode.BadBodyHash);
            }
        }
        catch
        {
            ReturnBuffer(buffer);
            throw;
        }

        return (parsed, buffer);
    }

    /// <summary>Hands a body buffer from <see cref="ReadAsync"/> back to the pool.</summary>
    public static void ReturnBuffer(byte[] buffer)
    {
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static FrameHeader Parse(byte[] header)
    {
        var span = header.AsSpan();
        return new FrameHeader(
            (FrameKind)span[0],
            (ResetReason)span[1],
            span.Slice(2, PeerProtocol.IdLength).ToArray(),
            BinaryPrimitives.ReadInt64LittleEndian(span[18..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[26..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[30..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[38..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[46..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[54..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[62..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[66..]));
    }

    private void WriteSigned(Span<byte> header, ReadOnlySpan<byte> body)
    {
        header[0] = (byte)Kind;
        header[1] = (byte)Reason;
        Session.CopyTo(header[2..]);
        BinaryPrimitives.WriteInt64LittleEndian(header[18..], Request);
        BinaryPrimitives.WriteInt32LittleEndian(header[26..], Index);
        BinaryPrimitives.WriteInt64LittleEndian(header[30..], From);
        BinaryPrimitives.WriteInt64LittleEndian(header[38..], To);
        BinaryPrimitives.WriteInt64LittleEndian(header[46..], Fingerprint);
        BinaryPrimitives.WriteInt64LittleEndian(header[54..], Head);
        BinaryPrimitives.WriteInt32LittleEndian(header[62..], Count);
        BinaryPrimitives.WriteInt32LittleEndian(header[66..], BodyLength);
        SHA256.HashData(body, header.Slice(70, 32));
    }

    private static byte[] ToSign(ReadOnlySpan<byte> signed)
    {
        var buffer = new byte[Domain.Length + signed.Length];
        Domain.CopyTo(buffer, 0);
        signed.CopyTo(buffer.AsSpan(Domain.Length));
        return buffer;
    }
}
