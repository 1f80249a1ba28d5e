namespace CrossStoreSync.Log;

/// <summary>
/// A component outside the dispatchers that still needs log entries (peer replication: what peers have not
/// acknowledged). Register it in DI as <see cref="ILogRetentionHolder"/> (several are allowed); the log retention task
/// asks every holder each round and never truncates an entry above a holder's position.
/// </summary>
/// <remarks>
/// Holders are never cut off by <see cref="Configuration.LogRetentionOptions.MaxRetainedEntries"/>: a holder that gives
/// up on what it holds back (a peer gone for good) reports a higher position itself. A holder whose call throws holds
/// the whole log back for that round. Implementations must be thread-safe.
/// </remarks>
public interface ILogRetentionHolder
{
    /// <summary>A stable name for status, logs and metrics.</summary>
    string Name { get; }

    /// <summary>
    /// The highest LSN such that the holder needs no entry at or below it (like a cursor); null when it holds nothing back.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<long?> GetRetainedThroughAsync(CancellationToken cancellationToken);
}
