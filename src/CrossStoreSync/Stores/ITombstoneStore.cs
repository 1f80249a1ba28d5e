using CrossStoreSync.Model;

namespace CrossStoreSync.Stores;

/// <summary>
/// A store that keeps a versioned tombstone for every delete (so an older change arriving later cannot bring the entity
/// back) and can purge old ones. The engine's retention task calls it once a tombstone is older than
/// <see cref="Configuration.LogRetentionOptions.TombstoneRetention"/> and no change a store still has to apply is older
/// than it (see docs/architecture.md, "Log retention").
/// </summary>
/// <remarks>Implementations must be thread-safe. Live records are never purged, whatever their version.</remarks>
public interface ITombstoneStore
{
    /// <summary>
    /// Removes up to <paramref name="maxCount"/> tombstones of <paramref name="collection"/> whose version is older than
    /// <paramref name="olderThan"/>. A removed tombstone no longer guards its key: a change older than it would be
    /// applied again.
    /// </summary>
    /// <param name="collection">The collection.</param>
    /// <param name="olderThan">Tombstones with a version strictly below this go.</param>
    /// <param name="maxCount">The most to remove in this call (one short write).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The number removed; fewer than <paramref name="maxCount"/> means none older is left.</returns>
    /// <exception cref="Errors.SyncStoreException">The store failed.</exception>
    ValueTask<int> PurgeTombstonesAsync(string collection, HlcTimestamp olderThan, int maxCount, CancellationToken cancellationToken);
}
