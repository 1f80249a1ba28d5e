using CrossStoreSync.Errors;

using CrossStoreSync.Stores;

namespace CrossStoreSync.Configuration;

/// <summary>Options of the sync engine. Validated at start-up; a bad value stops the host with a message quoting it.</summary>
public sealed class CrossStoreSyncOptions
{
    private readonly Dictionary<string, CollectionDefinition> _collections = new(StringComparer.Ordinal);

    /// <summary>This process's node id, stamped into every version (0..255). <value>Default 0.</value></summary>
    public int NodeId { get; set; }

    /// <summary>The most changes a dispatcher reads and applies in one batch. <value>Default 512.</value></summary>
    public int DispatchBatchSize { get; set; } = 512;

    /// <summary>The largest accepted document, in bytes. <value>Default 1 MiB.</value></summary>
    public int MaxDocumentBytes { get; set; } = 1024 * 1024;

    /// <summary>The largest accepted entity (document + vector + edges), in bytes. <value>Default 4 MiB.</value></summary>
    public int MaxEntityBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>The most edges one entity may carry. <value>Default 1024.</value></summary>
    public int MaxEdgesPerEntity { get; set; } = 1024;

    /// <summary>The most entities accepted by one <see cref="Sync.ISyncManager.WriteBatchAsync(System.Collections.Generic.IReadOnlyList{Model.SyncEntity}, CancellationToken)"/>. <value>Default 10,000.</value></summary>
    public int MaxWriteBatchSize { get; set; } = 10_000;

    /// <summary>The first retry delay after a transient store failure; later ones grow exponentially. <value>Default 100 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between retries of a failing replica. <value>Default 30 s.</value></summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one store apply may take before it counts as a transient timeout. <value>Default 30 s.</value></summary>
    public TimeSpan ApplyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries of the inline source-of-truth write on transient errors before the write is left pending. <value>Default 3.</value></summary>
    public int SourceRetryAttempts { get; set; } = 3;

    /// <summary>
    /// How often dispatchers look for changes appended by other processes and pending entries are re-resolved.
    /// In-process writes wake dispatchers at once. <value>Default 1 s.</value>
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often a busy dispatcher saves its cursor to the log; it also saves whenever it catches up. A crash replays at
    /// most this much work, harmlessly (applies are version-guarded). <value>Default 200 ms.</value>
    /// </summary>
    public TimeSpan CursorCheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The longest wait a store's back-off hint (an HTTP <c>Retry-After</c>, a gRPC retry delay; see
    /// <see cref="Errors.SyncStoreException.RetryAfter"/>) can impose on a replica's dispatcher: a longer hint is cut to it,
    /// so a misbehaving server cannot stall a replica for hours. Hints below it are honoured even when longer than
    /// <see cref="RetryMaxDelay"/>. <value>Default 5 minutes.</value>
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// This process's id among the processes that dispatch one shared change log (a log implementing
    /// <see cref="Log.IPartitionedChangeLog"/>, such as PostgreSQL's). Must be unique per running process; a restarted
    /// process may reuse its id. <value>Default: machine name, process id and a random suffix.</value>
    /// </summary>
    public string WorkerId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}";

    /// <summary>
    /// How long a dispatching process holds a partition of a shared change log without renewing its lease; after a
    /// crash, its partitions are taken over this long after its last renewal. Leases are renewed every third of it.
    /// <value>Default 15 s.</value>
    /// </summary>
    public TimeSpan PartitionLeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Log retention: how long applied entries stay in the change log, and tombstones and dead letters in the stores and
    /// the log. On by default (entries kept 1 hour after every store applied them).
    /// </summary>
    public LogRetentionOptions Retention { get; } = new();

    /// <summary>
    /// Whether this process applies the change log to the replicas. With false the engine starts for inspection only:
    /// the log and stores are initialised and cursors loaded, but no dispatcher runs and pending entries are not
    /// resolved here, so status, consistency checks and dry-run repairs can run beside the processes that do dispatch
    /// (the <c>css</c> tool starts its read-only commands this way). Writes are still accepted; they reach the replicas
    /// when a dispatching process reads them, and <see cref="Sync.ISyncManager.WaitForSyncAsync"/> in this process times
    /// out. <value>Default true.</value>
    /// </summary>
    public bool RunDispatchers { get; set; } = true;

    /// <summary>Events buffered per subscriber of <see cref="Sync.ISyncManager.SubscribeAsync"/>; the oldest are dropped beyond it. <value>Default 10,000.</value></summary>
    public int EventBufferCapacity { get; set; } = 10_000;

    /// <summary>
    /// Names of replicas that, while they have no cursor yet (they were just added), wait for a migration to fill them
    /// instead of replaying the whole change log: the migration's backfill brings the source's current state, and the
    /// replica's dispatcher starts at the log position taken before the backfill's scan. A replica listed here stays
    /// idle until a migration of all configured collections into it starts.
    /// </summary>
    public ISet<string> ReplicasAwaitingBackfill { get; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The configured collections. Writes to other collections are rejected.</summary>
    public IReadOnlyCollection<CollectionDefinition> Collections => _collections.Values;

    /// <summary>Declares a collection; its vector dimension is enforced on every write and passed to vector stores.</summary>
    /// <param name="name">The collection name (a valid <see cref="Model.EntityKey"/> collection).</param>
    /// <param name="vectorDimension">The vector dimension, or null when the collection's entities carry no vectors.</param>
    /// <param name="distance">The search distance.</param>
    /// <param name="onReplicaRejection">What happens when a replica permanently rejects a write to the collection:
    /// <see cref="Sync.ReplicaRejectionPolicy.DeadLetter"/> (the default) or <see cref="Sync.ReplicaRejectionPolicy.Compensate"/>.</param>
    /// <returns>These options, for chaining.</returns>
    /// <exception cref="ArgumentException">The name is invalid, the dimension is not positive or the policy is not defined.</exception>
    public CrossStoreSyncOptions AddCollection(string name, int? vectorDimension = null, VectorDistance distance = VectorDistance.Cosine, Sync.ReplicaRejectionPolicy onReplicaRejection = Sync.ReplicaRejectionPolicy.DeadLetter)
    {
        Model.EntityKey.ValidateCollection(name, nameof(name));
        if (vectorDimension is { } d && (d < 1 || d > 65_536))
        {
            throw new ArgumentOutOfRangeException(nameof(vectorDimension), d, $"Vector dimension of collection {SafeText.Quote(name)} must be in 1..65536.");
        }

        if (!Enum.IsDefined(onReplicaRejection))
        {
            throw new ArgumentOutOfRangeException(nameof(onReplicaRejection), onReplicaRejection, $"Replica rejection policy of collection {SafeText.Quote(name)} must be DeadLetter or Compensate.");
        }

        _collections[name] = new CollectionDefinition(name, vectorDimension, distance) { OnReplicaRejection = onReplicaRejection };
        return this;
    }

    /// <summary>Finds a configured collection.</summary>
    public bool TryGetCollection(string name, out CollectionDefinition definition) => _collections.TryGetValue(name, out definition!);
}
