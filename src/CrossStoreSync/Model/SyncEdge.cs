namespace CrossStoreSync.Model;

/// <summary>A typed, directed edge from an entity to another entity, optionally with JSON properties.</summary>
/// <remarks>Immutable and thread-safe. The target need not exist yet: graph stores create a placeholder node.</remarks>
public sealed class SyncEdge
{
    /// <summary>The longest edge type accepted, in characters.</summary>
    public const int MaxTypeLength = 64;

    /// <summary>Creates an edge.</summary>
    /// <param name="type">Relationship type; must match <c>^[A-Za-z][A-Za-z0-9_]{0,63}$</c>.</param>
    /// <param name="target">The entity the edge points to.</param>
    /// <param name="properties">Optional UTF-8 JSON object with edge properties.</param>
    /// <exception cref="ArgumentException">The type is not a valid identifier or the target is <c>default</c>.</exception>
    public SyncEdge(string type, EntityKey target, ReadOnlyMemory<byte> properties = default)
    {
        if (string.IsNullOrEmpty(type) || !Identifier.IsValid(type, MaxTypeLength))
        {
            throw new ArgumentException(
                $"Edge type {Errors.SafeText.Quote(type)} is not valid: it must start with a letter, contain only letters, digits and '_', and be at most {MaxTypeLength} characters.",
                nameof(type));
        }

        if (target.IsDefault)
        {
            throw new ArgumentException("Edge target must be a valid EntityKey, not default.", nameof(target));
        }

        Type = type;
        Target = target;
        Properties = properties;
    }

    /// <summary>The relationship type.</summary>
    public string Type { get; }

    /// <summary>The target entity.</summary>
    public EntityKey Target { get; }

    /// <summary>UTF-8 JSON object with the edge's properties, or empty.</summary>
    public ReadOnlyMemory<byte> Properties { get; }

    /// <inheritdoc />
    public override string ToString() => $"-[{Type}]->{Target}";
}
