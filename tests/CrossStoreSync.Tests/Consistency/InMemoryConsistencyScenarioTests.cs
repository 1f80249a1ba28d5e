using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Tests.Consistency;

/// <summary>The drift scenarios on the in-memory log and stores.</summary>
public sealed class InMemoryConsistencyScenarioTests : ConsistencyScenarioTests
{
    protected override async Task<IScenarioHarness> StartAsync()
    {
        var vectors = new InMemoryVectorStore();
        var graph = new InMemoryGraphStore();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(o =>
            {
                o.AddCollection(Collection, Dimension);
                o.PollInterval = TimeSpan.FromMilliseconds(50);
                o.DispatchBatchSize = 2048;
            })
            .UseChangeLog(_ => new InMemoryChangeLog())
            .UseSourceOfTruth(_ => new InMemoryDocumentStore())
            .AddReplica("v", _ => vectors)
            .AddReplica("g", _ => graph);
        var provider = services.BuildServiceProvider();
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return new Harness(provider, vectors, graph);
    }

    private sealed class Harness(ServiceProvider provider, InMemoryVectorStore vectors, InMemoryGraphStore graph) : IScenarioHarness
    {
        public ISyncManager Manager => provider.GetRequiredService<ISyncManager>();

        public IConsistencyChecker Checker => provider.GetRequiredService<IConsistencyChecker>();

        public IVectorStore Vectors => vectors;

        public IGraphStore Graph => graph;

        public Task EraseAsync(ISyncStore store, EntityKey key)
        {
            Assert.True(((InMemorySyncStore)store).EraseBehindTheLibrary(key));
            return Task.CompletedTask;
        }

        public Task RollBackAsync(ISyncStore store, EntityKey key)
        {
            var s = (InMemorySyncStore)store;
            Assert.True(s.RollBackBehindTheLibrary(key, new HlcTimestamp(s.GetVersion(key)!.Value.Value - 1000), 12345));
            return Task.CompletedTask;
        }

        public Task TamperAsync(ISyncStore store, EntityKey key)
        {
            Assert.True(((InMemorySyncStore)store).TamperBehindTheLibrary(key, e => new SyncEntity(
                e.Key,
                e.Document,
                e.Vector.ToArray().Select(x => -x).ToArray(),
                [.. e.Edges, new SyncEdge("INJECTED", new EntityKey(e.Key.Collection, "intruder"))])));
            return Task.CompletedTask;
        }

        public Task InsertOrphanAsync(ISyncStore store, SyncEntity entity)
        {
            ((InMemorySyncStore)store).InsertBehindTheLibrary(entity, new HlcTimestamp(1_000_000));
            return Task.CompletedTask;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var hosted in provider.GetServices<IHostedService>())
            {
                await hosted.StopAsync(CancellationToken.None);
            }

            await provider.DisposeAsync();
        }
    }
}
