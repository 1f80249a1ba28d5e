using CrossStoreSync.Configuration;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Peering.Configuration;

/// <summary>One configured peer, with its key decoded and its collections resolved.</summary>
internal sealed class PeerInfo(int nodeId, Uri baseUrl, byte[] publicKey, IReadOnlySet<string> collections, bool pull)
{
    public int NodeId { get; } = nodeId;

    public Uri BaseUrl { get; } = baseUrl;

    public byte[] PublicKey { get; } = publicKey;

    /// <summary>The collections exchanged with the peer (every configured one when none was listed).</summary>
    public IReadOnlySet<string> Collections { get; } = collections;

    public bool Pull { get; } = pull;

    public string Name { get; } = "node-" + nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public bool Exchanges(string collection) => Collections.Contains(collection);
}

/// <summary>This node's identity and its peers, built once from validated options. Owns the signing key.</summary>
internal sealed class PeerDirectory : IDisposable
{
    private readonly Dictionary<int, PeerInfo> _byNode;

    public PeerDirectory(IOptions<PeeringOptions> options, IOptions<CrossStoreSyncOptions> syncOptions)
    {
        var o = options.Value;
        Options = o;
        NodeId = o.NodeId;
        var key = o.SigningKey ?? File.ReadLines(o.SigningKeyFile!).FirstOrDefault();
        Identity = NodeIdentity.FromBase64(key ?? string.Empty, o.SigningKey is null ? nameof(PeeringOptions.SigningKeyFile) : nameof(PeeringOptions.SigningKey));
        var all = syncOptions.Value.Collections.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        _byNode = o.Peers.ToDictionary(
            p => p.NodeId,
            p => new PeerInfo(
                p.NodeId,
                new Uri(p.Url!.EndsWith('/') ? p.Url : p.Url + "/"),
                NodeIdentity.DecodeKey(p.PublicKey, "PublicKey"),
                p.Collections.Count == 0 ? all : p.Collections.ToHashSet(StringComparer.Ordinal),
                p.Pull));
        Peers = [.. _byNode.Values.OrderBy(p => p.NodeId)];
    }

    public PeeringOptions Options { get; }

    public int NodeId { get; }

    public NodeIdentity Identity { get; }

    public IReadOnlyList<PeerInfo> Peers { get; }

    public PeerInfo? Find(int nodeId) => _byNode.GetValueOrDefault(nodeId);

    /// <summary>The peer whose node id and key both match, or null.</summary>
    public PeerInfo? Authenticate(int nodeId, ReadOnlySpan<byte> publicKey) =>
        _byNode.TryGetValue(nodeId, out var peer) && publicKey.SequenceEqual(peer.PublicKey) ? peer : null;

    public PeerInfo Get(int nodeId) => Find(nodeId) ?? throw new ArgumentException($"Node {nodeId} is not a configured peer; configured: {string.Join(", ", _byNode.Keys.Order())}.", nameof(nodeId));

    public void Dispose() => Identity.Dispose();
}
