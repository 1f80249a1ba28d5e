using CrossStoreSync.Replication;

namespace CrossStoreSync.Peering.Configuration;

/// <summary>
/// Peer replication settings: this node's identity and the peers it exchanges entities with. Validated when the host
/// starts; an invalid setting stops it with the field named.
/// </summary>
/// <remarks>The signing key is a secret: it is never logged, and validation messages name the field, never the value.</remarks>
public sealed class PeeringOptions
{
    /// <summary>
    /// This node's id: the node id of every version it issues (<see cref="CrossStoreSync.Configuration.CrossStoreSyncOptions.NodeId"/>,
    /// which is set from it when left at 0). Unique among the peers; 0..254. <value>Required.</value>
    /// </summary>
    public int NodeId { get; set; } = -1;

    /// <summary>This node's Ed25519 private key: base64 of the 32-byte seed (<see cref="PeerKeys.Generate"/>). Either this or <see cref="SigningKeyFile"/>.</summary>
    public string? SigningKey { get; set; }

    /// <summary>A file holding the base64 private key (first line), read at start-up. Either this or <see cref="SigningKey"/>.</summary>
    public string? SigningKeyFile { get; set; }

    /// <summary>
    /// A URL to serve the peer protocol on from a listener of the library's own (console apps), such as
    /// <c>http://127.0.0.1:7400</c>; null when the host maps the endpoints itself with <c>MapCrossStoreSyncPeering()</c>.
    /// <value>Default null.</value>
    /// </summary>
    public string? ListenUrl { get; set; }

    /// <summary>The peers.</summary>
    public IList<PeerOptions> Peers { get; } = [];

    /// <summary>The conflict resolver of a collection; collections without one use last writer wins. Must be the same on every node.</summary>
    public IDictionary<string, IConflictResolver> ConflictResolvers { get; } = new Dictionary<string, IConflictResolver>(StringComparer.Ordinal);

    /// <summary>How far a peer's clock may differ from this node's at the handshake, and how far ahead of this node's clock a
    /// received version may be. <value>Default 1 minute.</value></summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a pull waits for a new entry before the server answers "nothing new". <value>Default 20 s.</value></summary>
    public TimeSpan LongPollTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>The most log entries one chunk covers. <value>Default 512.</value></summary>
    public int ChunkEntries { get; set; } = 512;

    /// <summary>
    /// The most bytes of states in one chunk (a larger single entity still travels alone). The puller applies a chunk in
    /// one transaction, so the default leaves room for <see cref="ChunkEntries"/> typical RAG entities (a 1 KB document
    /// and a 384-d vector are about 3 KB): a smaller bound cuts chunks by bytes first and adds commits.
    /// <value>Default 2 MiB.</value>
    /// </summary>
    public int ChunkBytes { get; set; } = 2 * 1024 * 1024;

    /// <summary>The most log entries one pull answer covers before the puller asks again (and acknowledges). <value>Default 8192.</value></summary>
    public int EntriesPerPull { get; set; } = 8192;

    /// <summary>The first wait before reconnecting to a failing peer; doubled (with jitter) up to <see cref="RetryMaxDelay"/>. <value>Default 200 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between reconnection attempts. <value>Default 30 s.</value></summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a request to a peer may take before it is abandoned (long polls add <see cref="LongPollTimeout"/>). <value>Default 30 s.</value></summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a session lives without being used before the peer must shake hands again. <value>Default 10 minutes.</value></summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How often each peer's source is compared with this node's by Merkle trees and differences pulled (it also runs
    /// whenever a peer's log was reset or truncated past this node's cursor); null to run it only then and on demand.
    /// <value>Default null.</value>
    /// </summary>
    public TimeSpan? RepairInterval { get; set; }

    /// <summary>The Merkle tree depth used to compare collections (2^depth leaves). <value>Default 16.</value></summary>
    public int RepairTreeDepth { get; set; } = 16;

    /// <summary>The path under which the endpoints are served. <value>Default <c>/crossstoresync/peering</c>.</value></summary>
    public string PathPrefix { get; set; } = "/crossstoresync/peering";
}

/// <summary>One peer.</summary>
public sealed class PeerOptions
{
    /// <summary>The peer's node id (its <see cref="PeeringOptions.NodeId"/>).</summary>
    public int NodeId { get; set; } = -1;

    /// <summary>The peer's base URL (its listener or the app that maps its endpoints), such as <c>https://eu-1.example.com</c>.</summary>
    public string? Url { get; set; }

    /// <summary>The peer's Ed25519 public key: base64 of 32 bytes.</summary>
    public string? PublicKey { get; set; }

    /// <summary>The collections exchanged with this peer, in both directions; empty for every configured collection.</summary>
    public IList<string> Collections { get; } = [];

    /// <summary>Whether this node pulls from the peer (it is always served when it pulls). <value>Default true.</value></summary>
    public bool Pull { get; set; } = true;
}
