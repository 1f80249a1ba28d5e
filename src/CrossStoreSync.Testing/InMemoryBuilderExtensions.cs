using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the in-memory log and stores explicitly (they are never a silent default).</summary>
public static class CrossStoreSyncTestingBuilderExtensions
{
    /// <summary>
    /// Uses an in-memory change log, document store (source of truth), vector store and graph store. Nothing survives
    /// the process: for tests and demos only.
    /// </summary>
    public static ICrossStoreSyncBuilder UseInMemoryStores(this ICrossStoreSyncBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder
            .UseChangeLog(_ => new InMemoryChangeLog())
            .UseSourceOfTruth(_ => new InMemoryDocumentStore())
            .AddReplica("inmemory-vectors", _ => new InMemoryVectorStore())
            .AddReplica("inmemory-graph", _ => new InMemoryGraphStore());
    }
}
