using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// A full consistency check of 1,000,000 entities between two in-memory stores (source and one vector replica),
/// 0.1% of the replica rolled back behind the library's back, end to end through <see cref="IConsistencyChecker"/>
/// (scan both sides, Merkle trees at depth 16, diff, entry-level comparison of the differing buckets). Baseline: the
/// naive check, loading both sides' digests into dictionaries and comparing every entry.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class ConsistencyCheckBenchmarks
{
    private const int Entities = 1_000_000;
    private const int Drifted = Entities / 1000;
    private readonly InMemoryDocumentStore _source = new();
    private readonly InMemoryVectorStore _replica = new();
    private EngineHost? _engine;
    private IConsistencyChecker? _checker;

    [GlobalSetup]
    public async Task Setup()
    {
        _engine = EngineHost.Start(b => b.UseChangeLog(_ => new InMemoryChangeLog()).UseSourceOfTruth(_ => _source).AddReplica("v", _ => _replica));
        _checker = _engine.Services.GetRequiredService<IConsistencyChecker>();
        CollectionDefinition[] collections = [new(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine)];
        await _replica.InitializeAsync(collections, CancellationToken.None);
        var vector = new float[BenchmarkData.Dimension];
        vector[0] = 1;
        var batch = new EntityChange[10_000];
        for (var start = 0; start < Entities; start += batch.Length)
        {
            for (var i = 0; i < batch.Length; i++)
            {
                var id = (start + i).ToString("D7", System.Globalization.CultureInfo.InvariantCulture);
                var entity = new SyncEntity(new EntityKey(BenchmarkData.Collection, id), Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\"}}"), vector);
                batch[i] = EntityChange.Upsert(entity, new HlcTimestamp(1_000_000 + start + i));
            }

            await _source.ApplyAsync(batch, CancellationToken.None);
            await _replica.ApplyAsync(batch, CancellationToken.None);
        }

        for (var i = 0; i < Drifted; i++)
        {
            var key = new EntityKey(BenchmarkData.Collection, (i * 997).ToString("D7", System.Globalization.CultureInfo.InvariantCulture));
            _replica.RollBackBehindTheLibrary(key, new HlcTimestamp(1), 7);
        }

        // Warm the stores' digest caches once, as a long-running process has them.
        _ = await Naive();
    }

    [GlobalCleanup]
    public ValueTask Cleanup() => _engine!.DisposeAsync();

    [Benchmark(Baseline = true, Description = "naive: both sides into dictionaries, compare all")]
    public async Task<long> Naive()
    {
        var source = new Dictionary<EntityKey, EntityDigest>(Entities);
        await foreach (var d in _source.ScanDigestsAsync(BenchmarkData.Collection, BucketRange.All, CancellationToken.None))
        {
            source[d.Key] = d;
        }

        long differences = 0;
        var seen = 0;
        await foreach (var d in _replica.ScanDigestsAsync(BenchmarkData.Collection, BucketRange.All, CancellationToken.None))
        {
            seen++;
            if (!source.TryGetValue(d.Key, out var s) || s.Version != d.Version || s.RecordedHash != d.RecordedHash)
            {
                differences++;
            }
        }

        return differences + (source.Count - seen);
    }

    [Benchmark(Description = "IConsistencyChecker full check (Merkle depth 16)")]
    public async Task<long> FullCheck()
    {
        var report = await _checker!.CheckAsync(BenchmarkData.Collection);
        var found = report.Stores[0].Inconsistent;
        return found == Drifted ? found : throw new InvalidOperationException($"Expected {Drifted} differences, found {found}.");
    }
}
