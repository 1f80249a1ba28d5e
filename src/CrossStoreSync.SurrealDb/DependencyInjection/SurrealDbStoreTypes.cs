using CrossStoreSync.Configuration;
using CrossStoreSync.SurrealDb;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The SurrealDB store type for <c>AddCrossStoreSync(configuration, types =&gt; types.AddSurrealDb())</c>.</summary>
public static class CrossStoreSyncSurrealDbStoreTypes
{
    /// <summary>
    /// Adds <c>SurrealDb</c>: the source of truth (<c>AddSurrealDbDocumentStore</c>); it keeps no change log, so the
    /// section needs a <c>Log</c> beside it. Keys of <see cref="SurrealDbOptions"/>: <c>Endpoint</c>, <c>Namespace</c>,
    /// <c>Database</c>, <c>Username</c>, <c>Password</c>, <c>BearerToken</c>, <c>StoreName</c>, ...
    /// </summary>
    /// <param name="types">The registry.</param>
    /// <returns>The registry.</returns>
    public static StoreTypeRegistry AddSurrealDb(this StoreTypeRegistry types)
    {
        ArgumentNullException.ThrowIfNull(types);
        return types.Add("SurrealDb", StoreRoles.Source, store =>
        {
            var check = new SurrealDbOptions();
            store.Bind(check);
            store.Validate(check.Validate, nameof(SurrealDbOptions));
            store.Builder.AddSurrealDbDocumentStore(store.CreateBinder<SurrealDbOptions>());
        });
    }
}
