using CrossStoreSync.Configuration;
using CrossStoreSync.Qdrant;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The Qdrant store type for <c>AddCrossStoreSync(configuration, types =&gt; types.AddQdrant())</c>.</summary>
public static class CrossStoreSyncQdrantStoreTypes
{
    /// <summary>
    /// Adds <c>Qdrant</c>: a vector replica over gRPC (<c>AddQdrantVectorStore</c>) named by its key under
    /// <c>Replicas</c>. Keys of <see cref="QdrantVectorStoreOptions"/> except <c>StoreName</c>: <c>Address</c>,
    /// <c>ApiKey</c>, <c>CertificateThumbprint</c>, <c>CollectionPrefix</c>, <c>Collections</c>, ...
    /// </summary>
    /// <param name="types">The registry.</param>
    /// <returns>The registry.</returns>
    public static StoreTypeRegistry AddQdrant(this StoreTypeRegistry types)
    {
        ArgumentNullException.ThrowIfNull(types);
        return types.Add("Qdrant", StoreRoles.Replica, store =>
        {
            var name = store.ReplicaName!;
            var check = new QdrantVectorStoreOptions { StoreName = name };
            store.Bind(check, nameof(QdrantVectorStoreOptions.StoreName));
            store.Validate(check.Validate, nameof(QdrantVectorStoreOptions));
            store.Builder.AddQdrantVectorStore(store.CreateBinder<QdrantVectorStoreOptions>(nameof(QdrantVectorStoreOptions.StoreName)), name);
        });
    }
}
