using CrossStoreSync.Hashing;

namespace CrossStoreSync.Model;

/// <summary>Whether a change writes or removes an entity.</summary>
public enum ChangeKind
{
    /// <summary>Insert or replace the entity.</summary>
    Upsert = 0,

    /// <summary>Remove the entity (stores keep a versioned tombstone where they can).</summary>
    Delete = 1,
}

/// <summary>
/// One versioned change to one entity, as appended to the change log and applied to every store.
/// </summary>
/// <remarks>Immutable and thread-safe. Stores must apply it only when <see cref="Version"/> is newer than the version they hold.</remarks>
public sealed class EntityChange
{
    private EntityChange(EntityKey key, ChangeKind kind, HlcTimestamp version, SyncEntity? entity, UInt128 contentHash, string? origin = null)
    {
        Key = key;
        Kind = kind;
        Version = version;
        Entity = entity;
        ContentHash = contentHash;
        Origin = origin;
    }

    /// <summary>The entity's key.</summary>
    public EntityKey Key { get; }

    /// <summary>Upsert or delete.</summary>
    public ChangeKind Kind { get; }

    /// <summary>The change's version.</summary>
    public HlcTimestamp Version { get; }

    /// <summary>The entity for an upsert; null for a delete.</summary>
    public SyncEntity? Entity { get; }

    /// <summary>The content hash of <see cref="Entity"/> (<see cref="EntityEncoding.ComputeContentHash"/>); zero for a delete.</summary>
    public UInt128 ContentHash { get; }

    /// <summary>
    /// The operation that wrote this change into a store outside the change log, such as a migration's id; null for
    /// changes dispatched from the log.
    /// </summary>
    /// <remarks>
    /// Stores keep it as the record's <c>_sync</c> origin tag, replaced by whatever change next wins the version guard,
    /// so <see cref="Stores.ISyncStore.RemoveByOriginAsync"/> removes exactly the records that operation wrote and that
    /// nothing newer has overwritten since. It is not part of the content hash.
    /// </remarks>
    public string? Origin { get; }

    /// <summary>Creates an upsert, computing its content hash.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="entity"/> is null.</exception>
    public static EntityChange Upsert(SyncEntity entity, HlcTimestamp version)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return new EntityChange(entity.Key, ChangeKind.Upsert, version, entity, EntityEncoding.ComputeContentHash(entity));
    }

    /// <summary>Creates an upsert with a hash computed earlier (decoded from a log that stores it).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="entity"/> is null.</exception>
    public static EntityChange Upsert(SyncEntity entity, HlcTimestamp version, UInt128 contentHash)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return new EntityChange(entity.Key, ChangeKind.Upsert, version, entity, contentHash);
    }

    /// <summary>Creates a delete.</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is <c>default</c>.</exception>
    public static EntityChange Delete(EntityKey key, HlcTimestamp version)
    {
        if (key.IsDefault)
        {
            throw new ArgumentException("Key must be a valid EntityKey, not default.", nameof(key));
        }

        return new EntityChange(key, ChangeKind.Delete, version, null, UInt128.Zero);
    }

    /// <summary>Returns this change tagged with an origin (see <see cref="Origin"/>).</summary>
    /// <param name="origin">The tag: 1..128 characters.</param>
    /// <exception cref="ArgumentException"><paramref name="origin"/> is empty, whitespace or longer than 128 characters.</exception>
    public EntityChange WithOrigin(string origin)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        if (origin.Length > MaxOriginLength)
        {
            throw new ArgumentException($"Origin {Errors.SafeText.Quote(origin, 40)} is {origin.Length} characters long; at most {MaxOriginLength} are allowed.", nameof(origin));
        }

        return new EntityChange(Key, Kind, Version, Entity, ContentHash, origin);
    }

    /// <summary>The longest <see cref="Origin"/> stores must be able to hold.</summary>
    public const int MaxOriginLength = 128;

    /// <inheritdoc />
    public override string ToString() => $"{Kind} {Key} @{Version}";
}
