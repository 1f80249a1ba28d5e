using CrossStoreSync.Model;

namespace CrossStoreSync.Sync;

/// <summary>
/// The entry point of change feeds (CDC): changes that another program made in the application's own tables, read
/// from the database's change stream and written through the engine so that they reach every store. Each write saves
/// the feed's position with it, so a feed restarted after a crash resumes exactly after the last change it wrote.
/// </summary>
/// <remarks>
/// When the change log lives in the same database as the source of truth (SQLite, PostgreSQL), the source write, the log
/// append and the position commit in one transaction: a crash can neither lose a change nor write it twice. With a
/// separate log, the position is saved right after the write, so a crash in between writes the last batch again — with
/// the same content, which changes nothing visible. Registered by <c>AddCrossStoreSync</c>; thread-safe.
/// </remarks>
public interface IChangeFeedWriter
{
    /// <summary>Writes a batch of changes reported by a feed and saves the feed's position with it.</summary>
    /// <param name="changes">The changes, at least one, keys distinct (coalesce a batch first: the last change of a key wins).</param>
    /// <param name="position">The feed's position after these changes.</param>
    /// <param name="cancellationToken">Cancels the operation before it commits.</param>
    /// <returns>The ticket of the write, to wait for the replicas.</returns>
    /// <exception cref="ArgumentException">A change is invalid (named by its index); nothing was written.</exception>
    /// <exception cref="Errors.SyncWriteRejectedException">The source rejected the batch; nothing was written.</exception>
    ValueTask<SyncTicket> WriteAsync(IReadOnlyList<FeedChange> changes, FeedPosition position, CancellationToken cancellationToken = default);

    /// <summary>Saves a feed's position without a change (a feed that read only changes it ignores moves on).</summary>
    ValueTask SavePositionAsync(FeedPosition position, CancellationToken cancellationToken = default);

    /// <summary>Reads the last position saved for a feed, or null when it never saved one.</summary>
    ValueTask<string?> GetPositionAsync(string feed, CancellationToken cancellationToken = default);
}

/// <summary>One change reported by a feed: an upsert (<see cref="Entity"/> set) or a delete of <see cref="Key"/>.</summary>
public sealed record FeedChange
{
    private FeedChange(EntityKey key, SyncEntity? entity)
    {
        Key = key;
        Entity = entity;
    }

    /// <summary>The entity.</summary>
    public EntityKey Key { get; }

    /// <summary>The entity's new state, or null for a delete.</summary>
    public SyncEntity? Entity { get; }

    /// <summary>An insert or update.</summary>
    public static FeedChange Upsert(SyncEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return new FeedChange(entity.Key, entity);
    }

    /// <summary>A delete.</summary>
    public static FeedChange Delete(EntityKey key) => new(key, null);
}

/// <summary>A feed's position: a name unique per feed and an opaque value the feed parses back on restart.</summary>
/// <param name="Feed">The feed's name (letters, digits, <c>_ - . /</c>; at most 200 characters).</param>
/// <param name="Value">The position.</param>
public readonly record struct FeedPosition(string Feed, string Value);
