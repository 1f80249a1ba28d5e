using CrossStoreSync.Errors;

namespace CrossStoreSync.Peering;

/// <summary>What went wrong in an exchange with a peer.</summary>
public enum PeerErrorCode
{
    /// <summary>Not classified.</summary>
    Unknown = 0,

    /// <summary>The peer could not be reached, or the connection broke.</summary>
    Unreachable = 1,

    /// <summary>A public key is not the one configured for that node (401 on the server side).</summary>
    UnknownKey = 2,

    /// <summary>A handshake signature did not verify, or the handshake was replayed or expired.</summary>
    HandshakeFailed = 3,

    /// <summary>The two nodes' clocks differ by more than <c>MaxClockSkew</c>.</summary>
    ClockSkew = 4,

    /// <summary>A request carried no valid session or request signature (401).</summary>
    Unauthorized = 5,

    /// <summary>A frame's signature did not verify.</summary>
    BadSignature = 6,

    /// <summary>A frame's body did not match its signed hash.</summary>
    BadBodyHash = 7,

    /// <summary>A frame or request was replayed, or belongs to another session or request.</summary>
    Replayed = 8,

    /// <summary>A frame arrived out of order, or its log range does not start at the cursor.</summary>
    OutOfOrder = 9,

    /// <summary>A message could not be decoded.</summary>
    Malformed = 10,

    /// <summary>An answer ended early.</summary>
    Truncated = 11,

    /// <summary>A received state was refused by validation (collection, size, hash, history, clock); see the message.</summary>
    Rejected = 12,

    /// <summary>The peer speaks another protocol version.</summary>
    ProtocolVersion = 13,

    /// <summary>The peer answered with a server error.</summary>
    ServerError = 14,

    /// <summary>The peer refused a collection this node asked for.</summary>
    Forbidden = 15,
}

/// <summary>An exchange with a peer failed; nothing of the failed chunk was applied and the cursor did not move.</summary>
public sealed class PeerProtocolException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public PeerProtocolException(string message, PeerErrorCode code, Exception? innerException = null)
        : base(message, operation: "peer", innerException: innerException)
    {
        Code = code;
    }

    /// <summary>What went wrong.</summary>
    public PeerErrorCode Code { get; }
}
