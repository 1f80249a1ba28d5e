using CrossStoreSync.Configuration;
using CrossStoreSync.Neo4j;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The Neo4j store type for <c>AddCrossStoreSync(configuration, types =&gt; types.AddNeo4j())</c>.</summary>
public static class CrossStoreSyncNeo4jStoreTypes
{
    /// <summary>
    /// Adds <c>Neo4j</c>: a graph replica over the Query API (<c>AddNeo4jGraphStore</c>) named by its key under
    /// <c>Replicas</c>. Keys of <see cref="Neo4jGraphStoreOptions"/> except <c>StoreName</c>: <c>BaseAddress</c>,
    /// <c>Database</c>, <c>User</c>, <c>Password</c>, <c>BearerToken</c>, <c>BatchSize</c>, ...
    /// </summary>
    /// <param name="types">The registry.</param>
    /// <returns>The registry.</returns>
    public static StoreTypeRegistry AddNeo4j(this StoreTypeRegistry types)
    {
        ArgumentNullException.ThrowIfNull(types);
        return types.Add("Neo4j", StoreRoles.Replica, store =>
        {
            var name = store.ReplicaName!;
            var check = new Neo4jGraphStoreOptions { StoreName = name };
            store.Bind(check, nameof(Neo4jGraphStoreOptions.StoreName));
            store.Validate(check.Validate, nameof(Neo4jGraphStoreOptions));
            store.Builder.AddNeo4jGraphStore(store.CreateBinder<Neo4jGraphStoreOptions>(nameof(Neo4jGraphStoreOptions.StoreName)), name);
        });
    }
}
