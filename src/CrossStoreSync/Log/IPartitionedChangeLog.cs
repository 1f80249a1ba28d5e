namespace CrossStoreSync.Log;

/// <summary>
/// A change log shared by several dispatching processes (DESIGN.md §3, scale-out). Every entry belongs to one of
/// <see cref="PartitionCount"/> partitions, chosen by its key, so all changes of a key are in one partition. Each store
/// has a cursor per partition, and a process dispatches a partition only while it holds that partition's lease: order
/// per key holds because one worker at a time applies a key's changes, and a worker that dies loses its leases when they
/// expire, so the others take its partitions over from their saved cursors. Applies are version-guarded, so the changes
/// a dead worker applied after its last saved cursor are applied again harmlessly.
/// </summary>
/// <remarks>The engine dispatches a store through partitions whenever its change log implements this interface.</remarks>
public interface IPartitionedChangeLog : IChangeLog
{
    /// <summary>The number of partitions (fixed when the log is created).</summary>
    int PartitionCount { get; }

    /// <summary>
    /// Records that <paramref name="worker"/> is alive, renews the leases it holds for <paramref name="store"/> and claims
    /// free or expired partitions up to its fair share (partitions divided by the live workers, rounded up).
    /// </summary>
    /// <param name="store">The store being dispatched.</param>
    /// <param name="worker">The worker's unique id.</param>
    /// <param name="leaseDuration">How long the leases (and the worker's liveness) last without renewal.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>The partitions the worker holds now, with their saved cursors, and its fair share.</returns>
    ValueTask<PartitionLeases> AcquirePartitionsAsync(string store, string worker, TimeSpan leaseDuration, CancellationToken cancellationToken);

    /// <summary>Gives partitions back (a worker above its fair share, or one shutting down) so others can claim them at once.</summary>
    /// <param name="store">The store.</param>
    /// <param name="worker">The worker that holds them.</param>
    /// <param name="partitions">The partitions; those the worker does not hold are ignored.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    ValueTask ReleasePartitionsAsync(string store, string worker, IReadOnlyList<int> partitions, CancellationToken cancellationToken);

    /// <summary>
    /// Reads up to <paramref name="maxCount"/> committed entries of the given partitions, each after its own cursor, in
    /// LSN order, skipping aborted entries and stopping before the first pending one.
    /// </summary>
    /// <param name="partitions">The partitions.</param>
    /// <param name="afterLsns">The cursor of each partition (same order).</param>
    /// <param name="maxCount">The most entries to return.</param>
    /// <param name="destination">Receives the entries.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns><see cref="LogReadResult.ReadThrough"/> is the LSN every given partition may advance to (at least its own
    /// cursor): every entry of those partitions up to it was returned or is aborted.</returns>
    /// <exception cref="Errors.ChangeLogCorruptedException">A record failed its checksum.</exception>
    ValueTask<LogReadResult> ReadCommittedAsync(IReadOnlyList<int> partitions, IReadOnlyList<long> afterLsns, int maxCount, List<LogRecord> destination, CancellationToken cancellationToken);

    /// <summary>
    /// Saves the cursors of partitions the worker holds (cursors never move back). Returns the partitions whose lease the
    /// worker no longer holds: their cursors were not saved and the worker must stop dispatching them.
    /// </summary>
    ValueTask<IReadOnlyList<int>> SavePartitionCursorsAsync(string store, string worker, IReadOnlyList<int> partitions, IReadOnlyList<long> lsns, CancellationToken cancellationToken);

    /// <summary>Reads every partition's saved cursor for a store (index = partition; 0 when never saved).</summary>
    ValueTask<long[]> GetPartitionCursorsAsync(string store, CancellationToken cancellationToken);

    /// <summary>Moves every partition cursor of a store forward to at least <paramref name="lsn"/> (a migration's backfill covered the changes before it).</summary>
    ValueTask AdvanceAllPartitionsAsync(string store, long lsn, CancellationToken cancellationToken);
}

/// <summary>The result of <see cref="IPartitionedChangeLog.AcquirePartitionsAsync"/>.</summary>
/// <param name="Partitions">The partitions the worker holds, ascending.</param>
/// <param name="Cursors">The saved cursor of each (same order).</param>
/// <param name="FairShare">How many partitions this worker should hold with the workers alive now.</param>
/// <param name="LiveWorkers">The workers alive now, this one included.</param>
public sealed record PartitionLeases(IReadOnlyList<int> Partitions, IReadOnlyList<long> Cursors, int FairShare, int LiveWorkers);
