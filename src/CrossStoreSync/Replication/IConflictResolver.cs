using CrossStoreSync.Model;

namespace CrossStoreSync.Replication;

/// <summary>
/// Resolves a conflict between two states of one entity written concurrently on different nodes (neither had seen the
/// other). Register the same resolver for a collection on every node: it must be deterministic — the same two states
/// give the same answer on every node and in every process — so that every node keeps the same content.
/// </summary>
/// <remarks>
/// The two states are passed ordered by version (<see cref="HlcTimestamp"/>, ties broken by node id), never as
/// "local" and "remote", so the answer cannot depend on which node resolves. A resolver is not asked when both states
/// hold the same content. When it keeps the newer state nothing new is written; when it keeps the older state, deletes
/// or merges, the resolving node writes the result as a new state that supersedes both. Two nodes resolving the same
/// conflict then write equal content with different versions, which the next exchange reconciles without asking again;
/// a merge must therefore return the same content for the same inputs, and merging two of its own results must reach a
/// fixed point (a set union does; appending a counter does not). Called inside the transaction that applies a batch:
/// it must be fast and must not block or perform I/O.
/// </remarks>
public interface IConflictResolver
{
    /// <summary>Chooses the state to keep.</summary>
    /// <param name="older">The state with the lower version.</param>
    /// <param name="newer">The state with the higher version.</param>
    ConflictResolution Resolve(ConflictingState older, ConflictingState newer);
}

/// <summary>One side of a conflict.</summary>
/// <param name="Key">The entity.</param>
/// <param name="Version">The state's version; its <see cref="HlcTimestamp.NodeId"/> is the node that wrote it.</param>
/// <param name="Entity">The entity, or null when the state is a delete.</param>
public sealed record ConflictingState(EntityKey Key, HlcTimestamp Version, SyncEntity? Entity)
{
    /// <summary>True when the state is a delete.</summary>
    public bool IsDeleted => Entity is null;
}

/// <summary>The outcome of <see cref="IConflictResolver.Resolve"/>.</summary>
public sealed class ConflictResolution
{
    private ConflictResolution(ConflictResolutionChoice choice, SyncEntity? merged)
    {
        Choice = choice;
        Merged = merged;
    }

    /// <summary>Keep the state with the higher version: last writer wins (the default policy).</summary>
    public static ConflictResolution KeepNewer { get; } = new(ConflictResolutionChoice.KeepNewer, null);

    /// <summary>Keep the state with the lower version.</summary>
    public static ConflictResolution KeepOlder { get; } = new(ConflictResolutionChoice.KeepOlder, null);

    /// <summary>Delete the entity.</summary>
    public static ConflictResolution Delete { get; } = new(ConflictResolutionChoice.Delete, null);

    /// <summary>What was chosen.</summary>
    public ConflictResolutionChoice Choice { get; }

    /// <summary>For <see cref="ConflictResolutionChoice.Merge"/>: the merged entity.</summary>
    public SyncEntity? Merged { get; }

    /// <summary>Keep a new entity built from the two (same key); validated like any write.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="entity"/> is null.</exception>
    public static ConflictResolution Merge(SyncEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return new ConflictResolution(ConflictResolutionChoice.Merge, entity);
    }
}

/// <summary>What a <see cref="ConflictResolution"/> keeps.</summary>
public enum ConflictResolutionChoice
{
    /// <summary>The state with the higher version.</summary>
    KeepNewer = 0,

    /// <summary>The state with the lower version.</summary>
    KeepOlder = 1,

    /// <summary>Neither: the entity is deleted.</summary>
    Delete = 2,

    /// <summary>A new entity merged from the two.</summary>
    Merge = 3,
}

/// <summary>The default policy: last writer wins by (HLC, node id), the order every store's version guard uses.</summary>
public sealed class LastWriterWinsResolver : IConflictResolver
{
    /// <summary>The shared instance.</summary>
    public static LastWriterWinsResolver Instance { get; } = new();

    /// <inheritdoc />
    public ConflictResolution Resolve(ConflictingState older, ConflictingState newer) => ConflictResolution.KeepNewer;
}
