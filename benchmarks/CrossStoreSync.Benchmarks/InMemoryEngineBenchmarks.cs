using BenchmarkDotNet.Attributes;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Engine overhead alone: the in-memory log and stores, so only the engine's own work is measured (validation,
/// versions, hashing, log append, inline source apply, dispatch to two replicas, waiting). Reported per change.
/// Baseline: the same changes applied directly to the three in-memory stores.
/// </summary>
[MemoryDiagnoser]
public class InMemoryEngineBenchmarks
{
    private const int Changes = 5000;
    private const int BatchSize = 1000;
    private SyncEntity[] _data = [];
    private EngineHost? _engine;
    private readonly IDocumentStore _documents = new InMemoryDocumentStore();
    private readonly IVectorStore _vectors = new InMemoryVectorStore();
    private readonly IGraphStore _graph = new InMemoryGraphStore();
    private readonly EntityChange[] _batch = new EntityChange[BatchSize];
    private long _version;

    [GlobalSetup]
    public async Task Setup()
    {
        _data = BenchmarkData.Entities(Changes);
        _engine = EngineHost.Start(b => b.UseInMemoryStores(), o => o.DispatchBatchSize = 1024);
        CollectionDefinition[] collections = [new(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine)];
        foreach (var store in new ISyncStore[] { _documents, _vectors, _graph })
        {
            await store.InitializeAsync(collections, CancellationToken.None);
        }
    }

    [GlobalCleanup]
    public ValueTask Cleanup() => _engine!.DisposeAsync();

    [Benchmark(Baseline = true, OperationsPerInvoke = Changes, Description = "direct applies to 3 in-memory stores")]
    public async Task<int> DirectApply()
    {
        for (var start = 0; start < Changes; start += BatchSize)
        {
            var version = new HlcTimestamp(++_version);
            for (var i = 0; i < BatchSize; i++)
            {
                _batch[i] = EntityChange.Upsert(_data[start + i], version);
            }

            await _documents.ApplyAsync(_batch, CancellationToken.None);
            await _vectors.ApplyAsync(_batch, CancellationToken.None);
            await _graph.ApplyAsync(_batch, CancellationToken.None);
        }

        return Changes;
    }

    [Benchmark(OperationsPerInvoke = Changes, Description = "engine: in-memory log + 3 stores, until synced")]
    public async Task<SyncWaitOutcome> Engine()
    {
        SyncTicket last = default;
        for (var start = 0; start < Changes; start += BatchSize)
        {
            last = await _engine!.Manager.WriteBatchAsync(new ArraySegment<SyncEntity>(_data, start, BatchSize));
        }

        var outcome = await _engine!.Manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(1));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }
}
