using CrossStoreSync.Configuration;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Tests.Support;

/// <summary>
/// The real engine built through DI over the in-memory log and stores, each store wrapped in a fault injector
/// (with no faults until a test asks for them), started and stopped like a host would.
/// </summary>
internal sealed class TestEngine : IAsyncDisposable
{
    /// <summary>How long a test waits for background work before it fails instead of hanging.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ServiceProvider _provider;
    private readonly IHostedService[] _hosted;

    private TestEngine(ServiceProvider provider, InMemoryChangeLog log, InMemoryDocumentStore source, StoreFaults sourceFaults, InMemoryVectorStore vectors, StoreFaults vectorFaults, InMemoryGraphStore graph, StoreFaults graphFaults)
    {
        _provider = provider;
        _hosted = [.. provider.GetServices<IHostedService>()];
        Log = log;
        Source = source;
        SourceFaults = sourceFaults;
        Vectors = vectors;
        VectorFaults = vectorFaults;
        Graph = graph;
        GraphFaults = graphFaults;
    }

    public IServiceProvider Services => _provider;

    public InMemoryChangeLog Log { get; }

    /// <summary>The source of truth's data (behind <see cref="SourceFaults"/>).</summary>
    public InMemoryDocumentStore Source { get; }

    public StoreFaults SourceFaults { get; }

    /// <summary>The vector replica's data (behind <see cref="VectorFaults"/>).</summary>
    public InMemoryVectorStore Vectors { get; }

    public StoreFaults VectorFaults { get; }

    /// <summary>The graph replica's data (behind <see cref="GraphFaults"/>).</summary>
    public InMemoryGraphStore Graph { get; }

    public StoreFaults GraphFaults { get; }

    public IReadOnlyList<InMemorySyncStore> Replicas => [Vectors, Graph];

    public IReadOnlyList<InMemorySyncStore> AllStores => [Source, Vectors, Graph];

    public ISyncManager Manager => _provider.GetRequiredService<ISyncManager>();

    public SyncEngine Engine => _provider.GetRequiredService<SyncEngine>();

    /// <summary>Fast retries and polling so recovery in tests takes milliseconds.</summary>
    public static void FastOptions(CrossStoreSyncOptions o)
    {
        o.AddCollection(Items.Collection, Items.Dimension);
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(5);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(50);
        o.PollInterval = TimeSpan.FromMilliseconds(50);
    }

    public static async Task<TestEngine> StartAsync(
        Action<CrossStoreSyncOptions>? configure = null,
        Func<IVectorStore, IVectorStore>? decorateVectors = null,
        Action<IServiceCollection>? configureServices = null,
        string vectorStoreName = "vectors",
        string graphStoreName = "graph",
        TestEngine? restartOf = null,
        TimeProvider? time = null,
        Func<IChangeLog, IChangeLog>? decorateLog = null)
    {
        // A restart runs a new engine (new provider, clock and dispatchers) over the previous engine's log and stores,
        // as a new process would over durable ones.
        var log = restartOf?.Log ?? new InMemoryChangeLog();
        var source = restartOf?.Source ?? new InMemoryDocumentStore("documents");
        var vectors = restartOf?.Vectors ?? new InMemoryVectorStore(vectorStoreName);
        var graph = restartOf?.Graph ?? new InMemoryGraphStore(graphStoreName);
        var sourceFaults = restartOf?.SourceFaults ?? new StoreFaults();
        var vectorFaults = restartOf?.VectorFaults ?? new StoreFaults();
        var graphFaults = restartOf?.GraphFaults ?? new StoreFaults();
        IDocumentStore sourceStore = new FaultInjectingDocumentStore(source, sourceFaults);
        IVectorStore vectorStore = new FaultInjectingVectorStore(vectors, vectorFaults);
        if (decorateVectors is not null)
        {
            vectorStore = decorateVectors(vectorStore);
        }

        IGraphStore graphStore = new FaultInjectingGraphStore(graph, graphFaults);

        var services = new ServiceCollection();
        services.AddLogging();
        if (time is not null)
        {
            services.AddSingleton(time);
        }

        services.AddCrossStoreSync(o =>
            {
                FastOptions(o);
                configure?.Invoke(o);
            })
            .UseChangeLog(_ => decorateLog is null ? log : decorateLog(log))
            .UseSourceOfTruth(_ => sourceStore)
            .AddReplica("vectors", _ => vectorStore)
            .AddReplica("graph", _ => graphStore);
        configureServices?.Invoke(services);

        var engine = new TestEngine(services.BuildServiceProvider(), log, source, sourceFaults, vectors, vectorFaults, graph, graphFaults);
        foreach (var hosted in engine._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return engine;
    }

    public async Task<SyncTicket> WriteAndSyncAsync(SyncEntity entity)
    {
        var ticket = await Manager.WriteAsync(entity);
        Assert.Equal(SyncWaitOutcome.Synced, await Manager.WaitForSyncAsync(ticket, Timeout));
        return ticket;
    }

    /// <summary>Waits for one replica's dispatcher alone to pass <paramref name="lsn"/> (its cursor is the engine's own signal).</summary>
    public async Task WaitForReplicaAsync(string store, long lsn)
    {
        var dispatcher = Engine.Dispatchers.Single(d => d.Name == store);
        using var timeout = new CancellationTokenSource(Timeout);
        await dispatcher.Cursor.WaitForAsync(lsn, timeout.Token);
    }

    /// <summary>Asserts that every replica records the source's version and hash for <paramref name="key"/> and really holds the matching content.</summary>
    public async Task AssertReplicasMatchSourceAsync(EntityKey key)
    {
        var expected = await Source.ReadAsync(key, CancellationToken.None);
        Assert.True(expected is not null, $"The source does not hold {key}.");
        foreach (var replica in Replicas)
        {
            var digests = await replica.ReadDigestsAsync(key.Collection, [key.Id], CancellationToken.None);
            Assert.True(digests.Count == 1, $"Store '{replica.Name}' does not hold {key}.");
            var digest = digests[0];
            Assert.True(expected.Version == digest.Version, $"Store '{replica.Name}' holds {key} at {digest.Version}; the source at {expected.Version}.");
            Assert.Equal(expected.ContentHash, digest.RecordedHash);
            Assert.Equal(ProjectionHash.Compute(expected.Entity, replica.Kind), digest.ProjectionHash);
        }
    }

    /// <summary>Stops the engine as a host shutdown would; the log and stores stay usable by a restarted engine.</summary>
    public async Task StopAsync()
    {
        foreach (var hosted in _hosted.Reverse())
        {
            await hosted.StopAsync(CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var hosted in _hosted.Reverse())
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _provider.DisposeAsync();
    }
}
