using CrossStoreSync.Consistency;
using CrossStoreSync.Model;

namespace CrossStoreSync.Migration;

/// <summary>
/// Fills a store from the source of truth: a new replica, a replica that was wiped, or a re-embedding into a new
/// collection through a transform. Backfills stream the source, write through the target's idempotent,
/// version-guarded apply, save durable checkpoints so a killed process resumes where it stopped, and never lose a
/// concurrent write (DESIGN.md §6).
/// </summary>
/// <remarks>Registered by <c>AddCrossStoreSync</c>. Thread-safe; one run per migration id at a time.</remarks>
public interface IMigrationManager
{
    /// <summary>Raised after every batch and at each phase change, with the same values the progress callback gets.</summary>
    event EventHandler<MigrationProgress>? ProgressChanged;

    /// <summary>
    /// Runs a migration to the end, or resumes it from its last checkpoint when a migration with the same
    /// <see cref="MigrationRequest.Id"/> was started before and did not finish.
    /// </summary>
    /// <param name="request">What to migrate.</param>
    /// <param name="progress">Receives progress after every batch; may be null.</param>
    /// <param name="cancellationToken">Stops the run; the checkpoints stay, so running it again resumes.</param>
    /// <returns>What was written, skipped and dead-lettered, the batch sizes chosen, and the verification.</returns>
    /// <exception cref="ArgumentException">The request is invalid (the message names the field and the value); nothing was written.</exception>
    /// <exception cref="MigrationException">The target kept failing after retries, or the migration was rolled back; the checkpoints stay.</exception>
    Task<MigrationReport> RunAsync(MigrationRequest request, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes from the target every record this migration wrote that nothing newer has replaced since (records are
    /// tagged with the migration id), and, for a re-embedding, the collection route it installed. A record the
    /// migration replaced is removed, not restored to its older copy: that copy was stale against the source.
    /// </summary>
    /// <param name="migrationId">The migration's id.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <exception cref="ArgumentException">No migration with that id is known.</exception>
    Task<MigrationRollbackResult> RollbackAsync(string migrationId, CancellationToken cancellationToken = default);

    /// <summary>Lists the migrations recorded in the change log's checkpoints, finished or not.</summary>
    Task<IReadOnlyList<MigrationStatus>> ListAsync(CancellationToken cancellationToken = default);
}

/// <summary>Turns a source entity into what the target should hold, for example by computing a new embedding.</summary>
/// <param name="source">The entity as the source of truth holds it.</param>
/// <param name="cancellationToken">Cancels the operation.</param>
/// <returns>The entity to write; its key is replaced by the target key (same id, the target collection).</returns>
public delegate ValueTask<SyncEntity> EntityTransform(SyncEntity source, CancellationToken cancellationToken);

/// <summary>What a migration does. Validated before anything is written.</summary>
public sealed record MigrationRequest
{
    /// <summary>Identifies the migration: its checkpoints, the origin tag of what it writes, and its rollback. 1..64 of <c>[A-Za-z0-9._-]</c>.</summary>
    public required string Id { get; init; }

    /// <summary>The name of the replica store to fill. It must be registered with <c>AddReplica</c>.</summary>
    public required string Target { get; init; }

    /// <summary>The source store's name, or null for the engine's source of truth (the only source supported).</summary>
    public string? Source { get; init; }

    /// <summary>The source collections to migrate, or null for every configured collection.</summary>
    public IReadOnlyList<string>? Collections { get; init; }

    /// <summary>
    /// Re-embedding: write the (single) source collection into this collection of the target, through
    /// <see cref="TransformName"/>, and route the replica's changes of the source collection there too (alongside the
    /// old collection while the migration runs; instead of it once it completes). The old collection stays until it
    /// is dropped explicitly. Null writes each collection under its own name.
    /// </summary>
    public string? TargetCollection { get; init; }

    /// <summary>
    /// The name of a transform registered with <c>AddTransform</c>, applied to every entity written. Registered by
    /// name, not passed here, because a re-embedded collection's route must keep transforming live changes after a
    /// restart. Required with <see cref="TargetCollection"/>.
    /// </summary>
    public string? TransformName { get; init; }

    /// <summary>Parallel workers; each streams its own disjoint range of buckets. <value>Default 2; 1..64.</value></summary>
    public int Workers { get; init; } = 2;

    /// <summary>The first batch size. <value>Default 256.</value></summary>
    public int InitialBatchSize { get; init; } = 256;

    /// <summary>The smallest batch the size controller may choose. <value>Default 16.</value></summary>
    public int MinBatchSize { get; init; } = 16;

    /// <summary>The largest batch the size controller may choose. <value>Default 4096.</value></summary>
    public int MaxBatchSize { get; init; } = 4096;

    /// <summary>
    /// The target write latency per batch: batches grow additively while writes stay under it and halve when one
    /// exceeds it or fails (AIMD). <value>Default 200 ms.</value>
    /// </summary>
    public TimeSpan TargetBatchLatency { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Attempts per batch on transient target failures before the run fails (resumable). <value>Default 8.</value></summary>
    public int MaxRetries { get; init; } = 8;

    /// <summary>Whether to run a consistency check of the target at the end. <value>Default true.</value></summary>
    public bool Verify { get; init; } = true;

    /// <summary>How long verification waits for the target's dispatcher to apply the changes made during the backfill. <value>Default 5 minutes.</value></summary>
    public TimeSpan VerifyCatchUpTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The check used for verification. <value>Default: a full (Merkle) check of the target only.</value></summary>
    public ConsistencyCheckOptions? VerifyOptions { get; init; }
}

/// <summary>The phase a migration is in.</summary>
public enum MigrationPhase
{
    /// <summary>Validating the request and recording the start position.</summary>
    Starting = 0,

    /// <summary>Streaming the source into the target.</summary>
    Backfilling = 1,

    /// <summary>Waiting for the target to apply concurrent changes, then checking it.</summary>
    Verifying = 2,

    /// <summary>Finished.</summary>
    Completed = 3,

    /// <summary>Rolled back.</summary>
    RolledBack = 4,
}

/// <summary>A progress report.</summary>
/// <param name="MigrationId">The migration.</param>
/// <param name="Phase">The current phase.</param>
/// <param name="Done">Source entities handled so far, including those handled before a resume.</param>
/// <param name="Total">Source entities counted at the start (concurrent writes may change it).</param>
/// <param name="EntitiesPerSecond">The rate of this run.</param>
/// <param name="EstimatedRemaining">The estimated time to finish the backfill, when a rate is known.</param>
/// <param name="BatchSize">The batch size the controller currently chooses.</param>
/// <param name="Errors">Entities dead-lettered so far, plus transient failures retried.</param>
public sealed record MigrationProgress(string MigrationId, MigrationPhase Phase, long Done, long Total, double EntitiesPerSecond, TimeSpan? EstimatedRemaining, int BatchSize, long Errors)
{
    /// <summary>Done as a fraction of total, in 0..1.</summary>
    public double Fraction => Total <= 0 ? 1 : Math.Clamp((double)Done / Total, 0, 1);
}

/// <summary>One entity the migration could not write; it was dead-lettered for the target with the reason.</summary>
/// <param name="Key">The source key.</param>
/// <param name="Reason">Why.</param>
public sealed record MigrationFailure(EntityKey Key, string Reason);

/// <summary>The outcome of a migration run.</summary>
/// <param name="MigrationId">The migration.</param>
/// <param name="Target">The target store.</param>
/// <param name="StartLsn">The log position taken before the scan; the target's dispatcher applies every change after it.</param>
/// <param name="Written">
/// Entities written through the target's version-guarded apply (over all runs). A record the target already held at
/// the same or a newer version is left as it was; counting those would cost a read per batch, so they count here too.
/// </param>
/// <param name="Failed">Entities dead-lettered.</param>
/// <param name="ResumedFrom">Entities already handled by earlier runs when this run started; 0 for a fresh start.</param>
/// <param name="Failures">The dead-lettered entities (at most 1,000 listed).</param>
/// <param name="BatchSizes">Minimum, final and maximum batch sizes the controller chose in this run.</param>
/// <param name="Retries">Transient target failures retried in this run.</param>
/// <param name="Duration">This run's duration.</param>
/// <param name="Verification">The consistency reports of the target, one per collection; empty when not verified.</param>
public sealed record MigrationReport(
    string MigrationId,
    string Target,
    long StartLsn,
    long Written,
    long Failed,
    long ResumedFrom,
    IReadOnlyList<MigrationFailure> Failures,
    (int Min, int Final, int Max) BatchSizes,
    long Retries,
    TimeSpan Duration,
    IReadOnlyList<ConsistencyReport> Verification)
{
    /// <summary>True when every verification report found the target consistent (vacuously true when not verified).</summary>
    public bool IsVerified => Verification.All(r => r.IsConsistent);
}

/// <summary>The outcome of a rollback.</summary>
/// <param name="MigrationId">The migration.</param>
/// <param name="Target">The target store.</param>
/// <param name="Removed">Records removed from the target.</param>
public sealed record MigrationRollbackResult(string MigrationId, string Target, long Removed);

/// <summary>A migration recorded in the checkpoints.</summary>
/// <param name="MigrationId">The migration.</param>
/// <param name="Target">The target store.</param>
/// <param name="Phase">Its phase: <see cref="MigrationPhase.Backfilling"/> for one that was interrupted.</param>
/// <param name="Done">Source entities handled.</param>
/// <param name="StartLsn">The log position taken before its scan.</param>
public sealed record MigrationStatus(string MigrationId, string Target, MigrationPhase Phase, long Done, long StartLsn);

/// <summary>A migration could not complete. Its checkpoints stay, so running it again resumes.</summary>
public sealed class MigrationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MigrationException(string message, string migrationId, Exception? innerException = null)
        : base(message, innerException)
    {
        MigrationId = migrationId;
    }

    /// <summary>Creates the exception.</summary>
    public MigrationException()
        : this("The migration failed.", string.Empty)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MigrationException(string message)
        : this(message, string.Empty)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MigrationException(string message, Exception innerException)
        : this(message, string.Empty, innerException)
    {
    }

    /// <summary>The migration.</summary>
    public string MigrationId { get; }
}
