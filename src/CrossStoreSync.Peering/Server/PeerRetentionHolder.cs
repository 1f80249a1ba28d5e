using CrossStoreSync.Log;

namespace CrossStoreSync.Peering.Server;

/// <summary>
/// Holds log truncation (and with it tombstone purges) back at the lowest position every configured peer has
/// acknowledged: an entry a peer has not pulled stays in the log, so a peer that was away catches up by cursor, and a
/// delete's tombstone outlives the moment every peer has seen it (DESIGN.md §7).
/// </summary>
internal sealed class PeerRetentionHolder(AckTracker acks) : ILogRetentionHolder
{
    public string Name => "peers";

    public async ValueTask<long?> GetRetainedThroughAsync(CancellationToken cancellationToken)
    {
        await acks.EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
        return acks.LowestAcknowledged();
    }
}
