using CrossStoreSync.Errors;

using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Sync;

/// <summary>
/// Where a replica keeps one source collection when a re-embedding moved it: changes of
/// <see cref="SourceCollection"/> are written, through <see cref="Transform"/>, to <see cref="TargetCollection"/> —
/// alongside the source collection while the re-embedding runs (<see cref="KeepSource"/>), instead of it after.
/// Routed records carry the migration id as their origin, so rolling the migration back removes them too.
/// </summary>
internal sealed record CollectionRoute(
    string SourceCollection,
    string TargetCollection,
    CollectionDefinition Target,
    string TransformName,
    EntityTransform Transform,
    bool KeepSource,
    string MigrationId)
{
    public static string CheckpointName(string store, string sourceCollection) => $"route/{store}/{sourceCollection}";

    public RouteState ToState() => new()
    {
        SourceCollection = SourceCollection,
        TargetCollection = TargetCollection,
        TransformName = TransformName,
        KeepSource = KeepSource,
        MigrationId = MigrationId,
    };

    /// <summary>Why <paramref name="output"/> cannot be stored in the target collection, or null when it can.</summary>
    public static string? Misfit(SyncEntity? output, CollectionDefinition target)
    {
        if (output is null)
        {
            return "the transform returned null";
        }

        if (!output.HasVector)
        {
            return null;
        }

        return target.VectorDimension switch
        {
            null => $"a vector of dimension {output.Vector.Length}, but collection {SafeText.Quote(target.Name)} has no vectors",
            { } d when d != output.Vector.Length => $"a vector of dimension {output.Vector.Length}, but collection {SafeText.Quote(target.Name)} has dimension {d}",
            _ => null,
        };
    }

    /// <summary>The routed copy of a change of the source collection, or the reason it cannot be made.</summary>
    public async ValueTask<(EntityChange? Change, string? Problem)> RouteAsync(EntityChange change, CancellationToken cancellationToken)
    {
        var key = new EntityKey(TargetCollection, change.Key.Id);
        if (change.Entity is null)
        {
            return (EntityChange.Delete(key, change.Version).WithOrigin(MigrationId), null);
        }

        SyncEntity output;
        try
        {
            output = await Transform(change.Entity, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!TransientErrors.IsCallerCancellation(ex, cancellationToken))
        {
            return (null, $"transform {SafeText.Quote(TransformName)} failed: {ex.GetType().Name}: {SafeText.Text(ex.Message)}");
        }

        if (Misfit(output, Target) is { } problem)
        {
            return (null, $"transform {SafeText.Quote(TransformName)} produced {problem}");
        }

        // The recorded hash stays the source's: it names the source content the record was made from, so checks
        // compare it with the source as for any other replica.
        var entity = new SyncEntity(key, output.Document, output.Vector, output.Edges);
        return (EntityChange.Upsert(entity, change.Version, change.ContentHash).WithOrigin(MigrationId), null);
    }
}

/// <summary>A route as saved in the change log's checkpoints (the transform is registered by name).</summary>
internal sealed class RouteState
{
    public required string SourceCollection { get; set; }

    public required string TargetCollection { get; set; }

    public required string TransformName { get; set; }

    public bool KeepSource { get; set; }

    public required string MigrationId { get; set; }
}
