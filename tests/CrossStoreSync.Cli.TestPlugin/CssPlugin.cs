using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Model;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Cli.TestPlugin;

/// <summary>
/// What an application hands <c>css --plugin</c>: the part of its set-up that configuration cannot express, here the
/// transform of a re-embedding ("embed-v2": an 8-dimension vector derived from the 4-dimension one, so the expected
/// output is known).
/// </summary>
public static class CssPlugin
{
    /// <summary>Called by the tool with the builder it made from the configuration.</summary>
    /// <param name="builder">The builder.</param>
    public static void ConfigureCrossStoreSync(ICrossStoreSyncBuilder builder) => builder.AddTransform("embed-v2", EmbedV2);

    /// <summary>The "new model": component i is the old component i mod 4, plus i.</summary>
    /// <param name="entity">The source entity.</param>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>The entity with its new embedding.</returns>
    public static ValueTask<SyncEntity> EmbedV2(SyncEntity entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var old = entity.Vector.Span;
        var vector = new float[8];
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = old[i % old.Length] + i;
        }

        return ValueTask.FromResult(new SyncEntity(entity.Key, entity.Document, vector, entity.Edges));
    }
}
