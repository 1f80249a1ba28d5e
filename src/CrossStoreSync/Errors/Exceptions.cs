using CrossStoreSync.Model;

namespace CrossStoreSync.Errors;

/// <summary>The base of the library's exceptions; carries the store, key and operation involved when known.</summary>
public class CrossStoreSyncException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CrossStoreSyncException(string message, string? store = null, EntityKey? key = null, string? operation = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Store = store;
        Key = key;
        Operation = operation;
    }

    /// <summary>The store involved, if any.</summary>
    public string? Store { get; }

    /// <summary>The entity involved, if one.</summary>
    public EntityKey? Key { get; }

    /// <summary>The operation that failed (for example <c>apply</c>, <c>read</c>).</summary>
    public string? Operation { get; }
}

/// <summary>A store failed. <see cref="IsTransient"/> tells the engine whether retrying can help.</summary>
public class SyncStoreException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public SyncStoreException(string message, bool isTransient, string? store = null, EntityKey? key = null, string? operation = null, Exception? innerException = null)
        : base(message, store, key, operation, innerException)
    {
        IsTransient = isTransient;
    }

    /// <summary>True when the failure is temporary (timeout, unavailable, busy) and the operation should be retried.</summary>
    public bool IsTransient { get; }

    /// <summary>
    /// How long the store asked to wait before the next attempt (an HTTP <c>Retry-After</c>, a gRPC retry delay), or null
    /// when it gave no hint. Adapters set it on transient failures; a replica's dispatcher then waits at least this long
    /// (up to <see cref="Configuration.CrossStoreSyncOptions.MaxRetryAfter"/>) instead of its own shorter back-off.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>The source of truth permanently rejected a write. The change was not stored and no replica will see it.</summary>
public sealed class SyncWriteRejectedException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public SyncWriteRejectedException(string message, string store, EntityKey? key, Exception innerException)
        : base(message, store, key, "write", innerException)
    {
    }
}

/// <summary>
/// The source of truth could not be reached in time. The change is durably logged as pending and will be applied to
/// the source, then the replicas, when it recovers; <see cref="Ticket"/> tracks it.
/// </summary>
public sealed class SourceUnavailableException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public SourceUnavailableException(string message, string store, Sync.SyncTicket ticket, Exception innerException)
        : base(message, store, null, "write", innerException)
    {
        Ticket = ticket;
    }

    /// <summary>The ticket of the logged, still pending change.</summary>
    public Sync.SyncTicket Ticket { get; }
}

/// <summary>A change log record failed its integrity check. It is reported, never skipped.</summary>
public sealed class ChangeLogCorruptedException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public ChangeLogCorruptedException(string message, long lsn, string field, Exception? innerException = null)
        : base(message, null, null, "read-log", innerException)
    {
        Lsn = lsn;
        Field = field;
    }

    /// <summary>The sequence number of the bad record.</summary>
    public long Lsn { get; }

    /// <summary>The field that failed the check (for example <c>checksum</c>, <c>payload</c>).</summary>
    public string Field { get; }
}

/// <summary>The configured change log cannot exchange states with other nodes (it is not an <see cref="Log.IReplicationLog"/>).</summary>
public sealed class ReplicationNotSupportedException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public ReplicationNotSupportedException(string message)
        : base(message, operation: "replicate")
    {
    }
}

/// <summary>Why a batch of received states was refused.</summary>
public enum ReplicationRejectReason
{
    /// <summary>A state's collection is not configured here or not exchanged with the sender.</summary>
    Collection = 0,

    /// <summary>A state fails the validation of a local write (key, size, vector, edges).</summary>
    Invalid = 1,

    /// <summary>A state's content hash differs from the hash of its content.</summary>
    Hash = 2,

    /// <summary>A state's version is further ahead of this node's clock than allowed.</summary>
    ClockAhead = 3,

    /// <summary>A state's history does not cover its version, or holds a newer entry than it.</summary>
    History = 4,

    /// <summary>A key appears twice in the batch.</summary>
    DuplicateKey = 5,
}

/// <summary>A batch of received states was refused before anything was applied; the puller's cursor did not move.</summary>
public sealed class ReplicationRejectedException : CrossStoreSyncException
{
    /// <summary>Creates the exception.</summary>
    public ReplicationRejectedException(string message, ReplicationRejectReason reason, int fromNode, int index, EntityKey? key, Exception? innerException = null)
        : base(message, key: key, operation: "replicate", innerException: innerException)
    {
        Reason = reason;
        FromNode = fromNode;
        Index = index;
    }

    /// <summary>Why.</summary>
    public ReplicationRejectReason Reason { get; }

    /// <summary>The node that sent the batch.</summary>
    public int FromNode { get; }

    /// <summary>The index of the offending state in the batch.</summary>
    public int Index { get; }
}
