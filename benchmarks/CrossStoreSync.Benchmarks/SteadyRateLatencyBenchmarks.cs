using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Write-to-visible-everywhere latency under a steady background load of 5,000 changes/s (batches of 50 every
/// 10 ms): each measured iteration writes one more entity and waits until the document, vector and graph stores all
/// hold it. Read the P99 column. Baseline: the same single row written to the same three tables with raw SQLite
/// transactions, under the same raw background load.
/// </summary>
[Config(typeof(LatencyConfig))]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 30, iterationCount: 500, invocationCount: 1)]
public class SteadyRateLatencyBenchmarks
{
    private const int BackgroundBatch = 50;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private readonly CancellationTokenSource _stop = new();
    private SyncEntity[] _data = [];
    private string _directory = "";
    private EngineHost? _engine;
    private RawSqliteWriter? _raw;
    private Task _background = Task.CompletedTask;
    private int _next;

    [GlobalSetup(Target = nameof(Engine))]
    public void SetupEngine()
    {
        Prepare();
        _engine = EngineHost.Start(b => b.UseSqlite(o => o.DirectoryPath = _directory));
        var manager = _engine.Manager;
        _background = RunAtSteadyRate(async batch => await manager.WriteBatchAsync(batch));
    }

    [GlobalSetup(Target = nameof(RawSqlite))]
    public void SetupRaw()
    {
        Prepare();
        _raw = RawSqliteWriter.CreateAsync(_directory).GetAwaiter().GetResult();
        var background = RawSqliteWriter.CreateAsync(_directory).GetAwaiter().GetResult();
        _background = RunAtSteadyRate(batch =>
        {
            background.Write(batch);
            return Task.CompletedTask;
        }).ContinueWith(_ => background.Dispose(), TaskScheduler.Default);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _stop.CancelAsync();
        await _background;
        _raw?.Dispose();
        if (_engine is not null)
        {
            await _engine.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, true);
    }

    [Benchmark(Baseline = true, Description = "raw SQLite: 1 row into 3 tables, under raw 5,000/s load")]
    public int RawSqlite()
    {
        _raw!.Write([NextEntity()]);
        return 1;
    }

    [Benchmark(Description = "engine: write 1, wait until visible in all 3 stores, under 5,000/s load")]
    public async Task<SyncWaitOutcome> Engine()
    {
        var ticket = await _engine!.Manager.WriteAsync(NextEntity());
        var outcome = await _engine.Manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(30));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }

    private void Prepare()
    {
        _data = BenchmarkData.Entities(20_000, seed: 7);
        _directory = Directory.CreateTempSubdirectory("css-bench-latency").FullName;
    }

    private SyncEntity NextEntity() => _data[Interlocked.Increment(ref _next) % 10_000];

    /// <summary>Writes a batch every tick on a timer, so the load is a rate, not a tight loop.</summary>
    private Task RunAtSteadyRate(Func<ArraySegment<SyncEntity>, Task> write) => Task.Run(async () =>
    {
        using var timer = new PeriodicTimer(Tick);
        var offset = 10_000;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                offset = (offset + BackgroundBatch) % 10_000;
                await write(new ArraySegment<SyncEntity>(_data, 10_000 + offset, BackgroundBatch));
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped by cleanup.
        }
    });

    private sealed class LatencyConfig : ManualConfig
    {
        public LatencyConfig()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.P95, new P99Column(), StatisticColumn.Max);
        }
    }
}
