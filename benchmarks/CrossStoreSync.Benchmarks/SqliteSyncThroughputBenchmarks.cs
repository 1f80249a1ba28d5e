using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// End-to-end sync throughput on the embedded SQLite log and stores: 2,000 entities (1 KB document, 384-d vector,
/// 2 edges) written in batches of 500 until they are applied in the document, vector and graph stores. Reported per
/// entity (OperationsPerInvoke). Baseline: the same rows written to the same tables in raw batched transactions.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 15, iterationCount: 20)]
public class SqliteSyncThroughputBenchmarks
{
    private const int Entities = 2000;
    private const int BatchSize = 500;
    private SyncEntity[] _data = [];
    private string _rawDirectory = "";
    private string _engineDirectory = "";
    private RawSqliteWriter? _raw;
    private EngineHost? _engine;

    [GlobalSetup]
    public async Task Setup()
    {
        _data = BenchmarkData.Entities(Entities);
        _rawDirectory = Directory.CreateTempSubdirectory("css-bench-raw").FullName;
        _engineDirectory = Directory.CreateTempSubdirectory("css-bench-engine").FullName;
        _raw = await RawSqliteWriter.CreateAsync(_rawDirectory);
        _engine = EngineHost.Start(b => b.UseSqlite(o => o.DirectoryPath = _engineDirectory), o => o.DispatchBatchSize = 1000);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _raw?.Dispose();
        if (_engine is not null)
        {
            await _engine.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_rawDirectory, true);
        Directory.Delete(_engineDirectory, true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Entities, Description = "raw batched SQLite (same rows, same tables)")]
    public int RawSqlite()
    {
        for (var start = 0; start < Entities; start += BatchSize)
        {
            _raw!.Write(new ArraySegment<SyncEntity>(_data, start, BatchSize));
        }

        return Entities;
    }

    [Benchmark(OperationsPerInvoke = Entities, Description = "engine: log + source + vector + graph")]
    public async Task<SyncWaitOutcome> Engine()
    {
        SyncTicket last = default;
        for (var start = 0; start < Entities; start += BatchSize)
        {
            last = await _engine!.Manager.WriteBatchAsync(new ArraySegment<SyncEntity>(_data, start, BatchSize));
        }

        var outcome = await _engine!.Manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }
}
