using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Configuration;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// The dispatch path alone: a dispatcher reads 10,000 committed changes from an in-memory log, coalesces them,
/// applies them to an in-memory store in batches of 512 and advances its cursor. Allocated bytes are reported per
/// change; at most 48 B/change proves at most two allocations per change (the smallest .NET object is 24 B).
/// Baseline: the same changes applied to the same store directly, in batches of 512, without log or cursor.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 30, invocationCount: 1)]
public class DispatchPathBenchmarks
{
    private const int Changes = 10_000;
    private const int BatchSize = 512;
    private readonly InMemoryChangeLog _log = new();
    private readonly InMemoryVectorStore _dispatchStore = new("dispatched");
    private readonly InMemoryVectorStore _directStore = new("direct");
    private readonly EntityChange[][] _directBatches = new EntityChange[(Changes + BatchSize - 1) / BatchSize][];
    private SyncEntity[] _data = [];
    private StoreDispatcher? _dispatcher;
    private long _cursor;
    private long _round;

    [GlobalSetup]
    public async Task Setup()
    {
        _data = BenchmarkData.Entities(Changes);
        CollectionDefinition[] collections = [new(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine)];
        await _dispatchStore.InitializeAsync(collections, CancellationToken.None);
        await _directStore.InitializeAsync(collections, CancellationToken.None);
        var options = new CrossStoreSyncOptions { DispatchBatchSize = BatchSize };
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
        _dispatcher = new StoreDispatcher(_dispatchStore, _log, options, TimeProvider.System, new SyncMetrics(meters), new EventHub(16), NullLogger.Instance);
        for (var i = 0; i < _directBatches.Length; i++)
        {
            _directBatches[i] = new EntityChange[Math.Min(BatchSize, Changes - (i * BatchSize))];
        }
    }

    /// <summary>Appends one round of newer versions, so every measured apply really writes (not the version-guard no-op).</summary>
    [IterationSetup]
    public void NextRound()
    {
        _round++;
        var changes = new EntityChange[Changes];
        for (var i = 0; i < Changes; i++)
        {
            changes[i] = EntityChange.Upsert(_data[i], new HlcTimestamp(_round << 20));
            _directBatches[i / BatchSize][i % BatchSize] = changes[i];
        }

        _log.AppendAsync(changes, LogEntryState.Committed, CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Changes, Description = "direct store applies")]
    public async Task<int> DirectApply()
    {
        foreach (var batch in _directBatches)
        {
            await _directStore.ApplyAsync(batch, CancellationToken.None);
        }

        // Keep the dispatcher's cursor in step so both methods see one fresh round per iteration.
        _cursor = await _log.GetLastLsnAsync(CancellationToken.None);
        await _log.SetCursorAsync(_dispatchStore.Name, _cursor, CancellationToken.None);
        return Changes;
    }

    [Benchmark(OperationsPerInvoke = Changes, Description = "dispatcher: read, coalesce, apply, cursor")]
    public async Task<long> Dispatch()
    {
        var target = _cursor + Changes;
        while (_cursor < target)
        {
            _cursor = await _dispatcher!.StepAsync(_cursor, CancellationToken.None);
        }

        return _cursor;
    }
}
