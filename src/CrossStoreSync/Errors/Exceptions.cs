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
