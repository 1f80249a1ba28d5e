using CrossStoreSync.Errors;

using System.Text;

namespace CrossStoreSync.Model;

/// <summary>
/// Identifies one entity: a collection (a Qdrant collection, a Neo4j label, a SQL partition) and an id inside it.
/// </summary>
/// <remarks>
/// The collection must match <c>^[A-Za-z][A-Za-z0-9_]{0,63}$</c> because it becomes an identifier in every store.
/// The id is any non-empty string of at most <see cref="MaxIdBytes"/> UTF-8 bytes without control characters or
/// unpaired surrogates. Equality is ordinal. Instances are immutable and thread-safe.
/// </remarks>
public readonly struct EntityKey : IEquatable<EntityKey>, IComparable<EntityKey>
{
    /// <summary>The longest collection name accepted, in characters.</summary>
    public const int MaxCollectionLength = 64;

    /// <summary>The longest id accepted, in UTF-8 bytes.</summary>
    public const int MaxIdBytes = 512;

    /// <summary>How much of a rejected value its error message quotes, so that a huge input cannot flood a log.</summary>
    private const int DescribedLength = 80;

    /// <summary>Creates a key after validating both parts.</summary>
    /// <exception cref="ArgumentException">The collection or id is empty, too long or contains forbidden characters.</exception>
    public EntityKey(string collection, string id)
    {
        ValidateCollection(collection, nameof(collection));
        ValidateId(id, nameof(id));
        Collection = collection;
        Id = id;
    }

    private EntityKey(string collection, string id, bool trusted)
    {
        _ = trusted;
        Collection = collection;
        Id = id;
    }

    /// <summary>The collection (validated identifier).</summary>
    public string Collection { get; }

    /// <summary>The id inside the collection.</summary>
    public string Id { get; }

    /// <summary>True for <c>default(EntityKey)</c>, which is not a valid key.</summary>
    public bool IsDefault => Collection is null;

    /// <summary>Creates a key from parts that were already validated (read back from a store).</summary>
    internal static EntityKey Trusted(string collection, string id) => new(collection, id, trusted: true);

    /// <summary>Validates a collection name, throwing an <see cref="ArgumentException"/> naming <paramref name="paramName"/> and the value.</summary>
    /// <exception cref="ArgumentException">The name is not a valid collection identifier.</exception>
    public static void ValidateCollection(string? collection, string paramName)
    {
        if (string.IsNullOrEmpty(collection))
        {
            throw new ArgumentException("Collection must be a non-empty identifier.", paramName);
        }

        if (!Identifier.IsValid(collection, MaxCollectionLength))
        {
            throw new ArgumentException(
                $"Collection {SafeText.Quote(collection, DescribedLength)} is not valid: it must start with a letter, contain only letters, digits and '_', and be at most {MaxCollectionLength} characters.",
                paramName);
        }
    }

    /// <summary>Validates an entity id, throwing an <see cref="ArgumentException"/> naming <paramref name="paramName"/> and the value.</summary>
    /// <exception cref="ArgumentException">The id is empty, too long or contains forbidden characters.</exception>
    public static void ValidateId(string? id, string paramName)
    {
        if (string.IsNullOrEmpty(id))
        {
            throw new ArgumentException("Id must be a non-empty string.", paramName);
        }

        for (var i = 0; i < id.Length; i++)
        {
            var c = id[i];
            if (char.IsControl(c))
            {
                throw new ArgumentException($"Id {SafeText.Quote(id, DescribedLength)} contains the control character U+{(int)c:X4} at index {i}.", paramName);
            }

            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= id.Length || !char.IsLowSurrogate(id[i + 1]))
                {
                    throw new ArgumentException($"Id {SafeText.Quote(id, DescribedLength)} contains an unpaired surrogate at index {i}.", paramName);
                }

                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                throw new ArgumentException($"Id {SafeText.Quote(id, DescribedLength)} contains an unpaired surrogate at index {i}.", paramName);
            }
        }

        var bytes = Encoding.UTF8.GetByteCount(id);
        if (bytes > MaxIdBytes)
        {
            throw new ArgumentException($"Id {SafeText.Quote(id, DescribedLength)} is {bytes} UTF-8 bytes; the limit is {MaxIdBytes}.", paramName);
        }
    }

    /// <inheritdoc />
    public bool Equals(EntityKey other) => string.Equals(Collection, other.Collection, StringComparison.Ordinal) && string.Equals(Id, other.Id, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is EntityKey other && Equals(other);

    /// <summary>A per-process hash for dictionaries. Never persisted: stable hashes come from <see cref="Hashing.KeyHash"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(
        Collection is null ? 0 : StringComparer.Ordinal.GetHashCode(Collection),
        Id is null ? 0 : StringComparer.Ordinal.GetHashCode(Id));

    /// <summary>Orders by collection, then id, both ordinal.</summary>
    public int CompareTo(EntityKey other)
    {
        var c = string.CompareOrdinal(Collection, other.Collection);
        return c != 0 ? c : string.CompareOrdinal(Id, other.Id);
    }

    /// <summary>Equality operator.</summary>
    public static bool operator ==(EntityKey left, EntityKey right) => left.Equals(right);

    /// <summary>Inequality operator.</summary>
    public static bool operator !=(EntityKey left, EntityKey right) => !left.Equals(right);

    /// <summary>Less-than operator.</summary>
    public static bool operator <(EntityKey left, EntityKey right) => left.CompareTo(right) < 0;

    /// <summary>Greater-than operator.</summary>
    public static bool operator >(EntityKey left, EntityKey right) => left.CompareTo(right) > 0;

    /// <summary>Less-or-equal operator.</summary>
    public static bool operator <=(EntityKey left, EntityKey right) => left.CompareTo(right) <= 0;

    /// <summary>Greater-or-equal operator.</summary>
    public static bool operator >=(EntityKey left, EntityKey right) => left.CompareTo(right) >= 0;

    /// <summary>Returns <c>collection/id</c>.</summary>
    public override string ToString() => $"{Collection}/{Id}";
}
