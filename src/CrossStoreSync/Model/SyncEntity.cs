using System.Text;

namespace CrossStoreSync.Model;

/// <summary>
/// One entity as the application writes it: a JSON document (the source of truth's record), an optional embedding
/// vector (for the vector store) and optional typed edges (for the graph store).
/// </summary>
/// <remarks>
/// Immutable once created; the library never copies the buffers passed in, so callers must not mutate them after
/// the write. Validation of sizes, JSON shape and vector values happens when the entity is written (see
/// <see cref="Configuration.CrossStoreSyncOptions"/> for the limits), so bad input is rejected before anything is stored.
/// </remarks>
public sealed class SyncEntity
{
    private static readonly SyncEdge[] NoEdges = [];

    /// <summary>Creates an entity.</summary>
    /// <param name="key">The entity's key.</param>
    /// <param name="document">UTF-8 JSON; its root must be an object.</param>
    /// <param name="vector">The embedding, or empty when the entity has none.</param>
    /// <param name="edges">Outgoing edges, or null.</param>
    /// <exception cref="ArgumentException"><paramref name="key"/> is <c>default</c>.</exception>
    public SyncEntity(EntityKey key, ReadOnlyMemory<byte> document, ReadOnlyMemory<float> vector = default, IReadOnlyList<SyncEdge>? edges = null)
    {
        if (key.IsDefault)
        {
            throw new ArgumentException("Key must be a valid EntityKey, not default.", nameof(key));
        }

        Key = key;
        Document = document;
        Vector = vector;
        Edges = edges ?? NoEdges;
    }

    /// <summary>Creates an entity from a JSON string.</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is <c>default</c>.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    public static SyncEntity FromJson(EntityKey key, string json, ReadOnlyMemory<float> vector = default, IReadOnlyList<SyncEdge>? edges = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        return new SyncEntity(key, Encoding.UTF8.GetBytes(json), vector, edges);
    }

    /// <summary>The entity's key.</summary>
    public EntityKey Key { get; }

    /// <summary>The UTF-8 JSON document.</summary>
    public ReadOnlyMemory<byte> Document { get; }

    /// <summary>The embedding vector; empty when the entity has none.</summary>
    public ReadOnlyMemory<float> Vector { get; }

    /// <summary>Outgoing edges; never null.</summary>
    public IReadOnlyList<SyncEdge> Edges { get; }

    /// <summary>True when the entity carries a vector.</summary>
    public bool HasVector => !Vector.IsEmpty;

    /// <summary>The document decoded as a string (for display and tests).</summary>
    public string DocumentText => Encoding.UTF8.GetString(Document.Span);

    /// <inheritdoc />
    public override string ToString() => Key.ToString();
}
