using CrossStoreSync.Model;
using CrossStoreSync.Sync;

namespace CrossStoreSync.Consistency;

/// <summary>
/// Proves whether the replicas agree with the source of truth by reading what each store really holds, and repairs
/// what differs through the change log. Thread-safe; checks may run while the engine keeps writing (a change in flight
/// can show up as stale or missing until its dispatcher applies it).
/// </summary>
public interface IConsistencyChecker
{
    /// <summary>Checks one collection of the source of truth against each replica.</summary>
    /// <param name="collection">The collection.</param>
    /// <param name="options">Mode, depth, range and limits; defaults when null.</param>
    /// <param name="progress">Receives progress per store and phase.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <exception cref="ArgumentException">The collection is not configured, or an option is out of range.</exception>
    Task<ConsistencyReport> CheckAsync(string collection, ConsistencyCheckOptions? options = null, IProgress<ConsistencyProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Turns each finding of <paramref name="report"/> into a change written through the normal path: missing, stale and
    /// corrupted entities are re-projected from the source's current state, orphans are deleted. The changes carry a
    /// version one step newer than any the stores hold, so a concurrent application write (always newer) still wins.
    /// With <paramref name="dryRun"/> nothing is written and the planned actions are returned.
    /// </summary>
    Task<RepairResult> RepairAsync(ConsistencyReport report, bool dryRun = false, CancellationToken cancellationToken = default);
}

/// <summary>How a check compares stores.</summary>
public enum ConsistencyCheckMode
{
    /// <summary>Merkle trees over the bucket space; entry-level comparison only inside differing buckets. Finds every difference.</summary>
    Full = 0,

    /// <summary>
    /// Memory-bounded: a Bloom filter of one side's digests, the other side streamed against it, candidates verified
    /// exactly. A difference escapes only if its digest is a false positive (probability about the filter's FPR).
    /// </summary>
    MemoryBounded = 1,

    /// <summary>A random fraction of buckets compared entry by entry; reports an estimated inconsistency rate with a confidence interval.</summary>
    Sampling = 2,
}

/// <summary>What kind of difference a finding is.</summary>
public enum InconsistencyKind
{
    /// <summary>The source holds the entity; the store does not.</summary>
    Missing = 0,

    /// <summary>The store holds an entity the source does not.</summary>
    Orphaned = 1,

    /// <summary>The store holds another version or content hash than the source.</summary>
    Stale = 2,

    /// <summary>Versions and hashes agree, but the content the store really holds differs (edited outside the library). Deep checks only.</summary>
    Corrupted = 3,
}

/// <summary>Options of a check. Validated when the check starts.</summary>
public sealed class ConsistencyCheckOptions
{
    /// <summary>The comparison mode. <value>Default <see cref="ConsistencyCheckMode.Full"/>.</value></summary>
    public ConsistencyCheckMode Mode { get; set; } = ConsistencyCheckMode.Full;

    /// <summary>
    /// Also compare the content each store really holds (projection hashes) with what the source implies, finding
    /// out-of-band edits as <see cref="InconsistencyKind.Corrupted"/>. Reads full entities from the source.
    /// <value>Default false.</value>
    /// </summary>
    public bool Deep { get; set; }

    /// <summary>Merkle depth: the key space is split into 2^depth buckets (10..24). <value>Default 16.</value></summary>
    public int MerkleDepth { get; set; } = 16;

    /// <summary>The bucket range to check (resume a long check range by range). <value>Default all buckets.</value></summary>
    public BucketRange Range { get; set; } = BucketRange.All;

    /// <summary>Only these replicas (by name); null for all. <value>Default null.</value></summary>
    public IReadOnlyCollection<string>? Stores { get; set; }

    /// <summary>Bloom filter bits per key in <see cref="ConsistencyCheckMode.MemoryBounded"/> mode. <value>Default 10.6 (about 1% FPR).</value></summary>
    public double BloomBitsPerKey { get; set; } = 10.6;

    /// <summary>Fraction of buckets compared in <see cref="ConsistencyCheckMode.Sampling"/> mode (0, 1]. <value>Default 0.01.</value></summary>
    public double SampleFraction { get; set; } = 0.01;

    /// <summary>Confidence level of the sampling interval (0.5..0.999). <value>Default 0.95.</value></summary>
    public double ConfidenceLevel { get; set; } = 0.95;

    /// <summary>Seed of the bucket sample, for reproducible samples; null for a random one. <value>Default null.</value></summary>
    public int? SampleSeed { get; set; }

    /// <summary>The most findings listed per store (counts are always complete). <value>Default 10,000.</value></summary>
    public int MaxReportedFindings { get; set; } = 10_000;
}

/// <summary>One difference found in one store.</summary>
/// <param name="Key">The entity.</param>
/// <param name="Kind">What differs.</param>
/// <param name="SourceVersion">The version the source holds, if any.</param>
/// <param name="StoreVersion">The version the store holds, if any.</param>
public sealed record ConsistencyFinding(EntityKey Key, InconsistencyKind Kind, HlcTimestamp? SourceVersion, HlcTimestamp? StoreVersion);

/// <summary>The estimate of a sampling check.</summary>
/// <param name="SampledEntities">Entities compared.</param>
/// <param name="InconsistentEntities">Of those, inconsistent.</param>
/// <param name="Rate">The observed inconsistency rate.</param>
/// <param name="Lower">Lower bound of the Wilson score interval.</param>
/// <param name="Upper">Upper bound of the Wilson score interval.</param>
/// <param name="ConfidenceLevel">The interval's confidence level.</param>
/// <param name="EstimatedInconsistent">Rate × the source's entity count.</param>
public sealed record SamplingEstimate(long SampledEntities, long InconsistentEntities, double Rate, double Lower, double Upper, double ConfidenceLevel, long EstimatedInconsistent);

/// <summary>The result of checking one replica.</summary>
/// <param name="Store">The replica.</param>
/// <param name="Consistent">Entities that agree.</param>
/// <param name="Missing">Count of <see cref="InconsistencyKind.Missing"/>.</param>
/// <param name="Orphaned">Count of <see cref="InconsistencyKind.Orphaned"/>.</param>
/// <param name="Stale">Count of <see cref="InconsistencyKind.Stale"/>.</param>
/// <param name="Corrupted">Count of <see cref="InconsistencyKind.Corrupted"/>.</param>
/// <param name="Findings">The findings, at most <see cref="ConsistencyCheckOptions.MaxReportedFindings"/>.</param>
/// <param name="FindingsTruncated">True when there were more findings than listed.</param>
/// <param name="EntriesRead">Digests or entities read from both sides for this store.</param>
/// <param name="BytesRead">Approximate bytes of digests and entities read.</param>
/// <param name="BucketsCompared">Merkle leaves (or sampled buckets) compared.</param>
/// <param name="BucketsDiffering">Of those, differing.</param>
/// <param name="Estimate">The sampling estimate, in <see cref="ConsistencyCheckMode.Sampling"/> mode.</param>
public sealed record StoreConsistencyReport(
    string Store,
    long Consistent,
    long Missing,
    long Orphaned,
    long Stale,
    long Corrupted,
    IReadOnlyList<ConsistencyFinding> Findings,
    bool FindingsTruncated,
    long EntriesRead,
    long BytesRead,
    long BucketsCompared,
    long BucketsDiffering,
    SamplingEstimate? Estimate)
{
    /// <summary>Total inconsistencies.</summary>
    public long Inconsistent => Missing + Orphaned + Stale + Corrupted;
}

/// <summary>The result of <see cref="IConsistencyChecker.CheckAsync"/>.</summary>
/// <param name="Collection">The collection.</param>
/// <param name="Source">The source of truth.</param>
/// <param name="Mode">The mode used.</param>
/// <param name="Deep">Whether projections were compared.</param>
/// <param name="Range">The bucket range checked.</param>
/// <param name="SourceEntities">Live entities the source holds in the range (all modes read them).</param>
/// <param name="Stores">One report per replica.</param>
/// <param name="StartedAt">When the check started.</param>
/// <param name="Duration">How long it took.</param>
public sealed record ConsistencyReport(
    string Collection,
    string Source,
    ConsistencyCheckMode Mode,
    bool Deep,
    BucketRange Range,
    long SourceEntities,
    IReadOnlyList<StoreConsistencyReport> Stores,
    DateTimeOffset StartedAt,
    TimeSpan Duration)
{
    /// <summary>True when no store has a finding (in sampling mode: none in the sample).</summary>
    public bool IsConsistent => Stores.All(s => s.Inconsistent == 0);
}

/// <summary>Progress of a check.</summary>
/// <param name="Store">The replica being compared.</param>
/// <param name="Phase">What is happening: <c>source</c>, <c>store</c>, <c>compare</c> or <c>done</c>.</param>
/// <param name="EntriesRead">Entries read so far for this store.</param>
/// <param name="BucketsDone">Buckets (leaves) finished in the compare phase.</param>
/// <param name="BucketsTotal">Buckets to compare.</param>
public sealed record ConsistencyProgress(string Store, string Phase, long EntriesRead, long BucketsDone, long BucketsTotal);

/// <summary>One repair the checker performs (or would perform, in a dry run).</summary>
/// <param name="Key">The entity.</param>
/// <param name="Kind">Re-project (<see cref="ChangeKind.Upsert"/>) or delete.</param>
/// <param name="Version">The version the repair change carries.</param>
/// <param name="Stores">The stores whose findings it fixes.</param>
public sealed record RepairAction(EntityKey Key, ChangeKind Kind, HlcTimestamp Version, IReadOnlyList<string> Stores);

/// <summary>The result of <see cref="IConsistencyChecker.RepairAsync"/>.</summary>
/// <param name="DryRun">True when nothing was written.</param>
/// <param name="Actions">The repairs.</param>
/// <param name="Ticket">The ticket of the written changes (wait on it with <see cref="ISyncManager.WaitForSyncAsync"/>); null for a dry run or when nothing needed repair.</param>
public sealed record RepairResult(bool DryRun, IReadOnlyList<RepairAction> Actions, SyncTicket? Ticket);
