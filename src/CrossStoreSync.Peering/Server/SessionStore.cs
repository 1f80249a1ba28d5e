using System.Collections.Concurrent;
using System.Security.Cryptography;
using CrossStoreSync.Peering.Configuration;

namespace CrossStoreSync.Peering.Server;

/// <summary>
/// The server's half-open handshakes and open sessions. A handshake is consumed by its first confirmation, so a
/// replayed confirmation finds nothing; a session accepts each request sequence number once, in increasing order, so a
/// replayed request is refused. Both expire; handshakes per peer are capped, since anyone may start one with a known
/// (public) key.
/// </summary>
internal sealed class SessionStore(TimeProvider time, TimeSpan idleTimeout)
{
    private const int MaxPendingPerPeer = 16;
    private static readonly TimeSpan HandshakeLifetime = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, PendingHandshake> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ServerSession> _sessions = new(StringComparer.Ordinal);

    public string BeginHandshake(PeerInfo peer, byte[] clientTranscript, byte[] handshakeId)
    {
        Sweep();
        var mine = _pending.Where(p => p.Value.Peer.NodeId == peer.NodeId).OrderBy(p => p.Value.ExpiresAt).ToList();
        for (var i = 0; i <= mine.Count - MaxPendingPerPeer; i++)
        {
            _pending.TryRemove(mine[i].Key, out _);
        }

        var id = Convert.ToBase64String(handshakeId);
        _pending[id] = new PendingHandshake(peer, clientTranscript, time.GetUtcNow() + HandshakeLifetime);
        return id;
    }

    /// <summary>Takes a pending handshake (once); null when unknown, used or expired.</summary>
    public PendingHandshake? TakeHandshake(string id)
    {
        if (!_pending.TryRemove(id, out var pending))
        {
            return null;
        }

        return pending.ExpiresAt >= time.GetUtcNow() ? pending : null;
    }

    public ServerSession Open(PeerInfo peer)
    {
        var id = RandomNumberGenerator.GetBytes(PeerProtocolIds.Length);
        var session = new ServerSession(peer, id, time.GetUtcNow());
        _sessions[Convert.ToBase64String(id)] = session;
        return session;
    }

    /// <summary>
    /// The session, when it exists, is not idle past its timeout, <paramref name="verify"/> accepts the request's
    /// signature and <paramref name="sequence"/> is new; the sequence is consumed only by a verified request.
    /// </summary>
    public ServerSession? Use(string id, long sequence, Func<ServerSession, bool> verify, out string reason)
    {
        if (!_sessions.TryGetValue(id, out var session))
        {
            reason = "unknown session";
            return null;
        }

        var now = time.GetUtcNow();
        lock (session)
        {
            if (now - session.LastUsed > idleTimeout)
            {
                _sessions.TryRemove(id, out _);
                reason = "session expired";
                return null;
            }

            if (!verify(session))
            {
                reason = "the request signature does not verify";
                return null;
            }

            if (sequence <= session.LastSequence)
            {
                reason = $"request sequence {sequence} is not after {session.LastSequence} (replayed or reordered)";
                return null;
            }

            session.LastSequence = sequence;
            session.LastUsed = now;
        }

        reason = string.Empty;
        return session;
    }

    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (id, pending) in _pending)
        {
            if (pending.ExpiresAt < now)
            {
                _pending.TryRemove(id, out _);
            }
        }

        foreach (var (id, session) in _sessions)
        {
            if (now - session.LastUsed > idleTimeout)
            {
                _sessions.TryRemove(id, out _);
            }
        }
    }
}

/// <summary>A handshake waiting for the client's signature.</summary>
internal sealed record PendingHandshake(PeerInfo Peer, byte[] ClientTranscript, DateTimeOffset ExpiresAt);

/// <summary>An authenticated session with a peer.</summary>
internal sealed class ServerSession(PeerInfo peer, byte[] id, DateTimeOffset opened)
{
    public PeerInfo Peer { get; } = peer;

    public byte[] Id { get; } = id;

    public long LastSequence { get; set; }

    public DateTimeOffset LastUsed { get; set; } = opened;
}

internal static class PeerProtocolIds
{
    public const int Length = Protocol.PeerProtocol.IdLength;
}
