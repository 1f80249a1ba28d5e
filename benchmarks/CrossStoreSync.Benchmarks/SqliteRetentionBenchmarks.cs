using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Sustained end-to-end SQLite throughput with log retention on against retention off (the baseline), in the same run:
/// each invocation writes 5,000 changes (batches of 250, the 1 KB / 384-d / 2-edge entities) over a key space
/// of 2,000 until every store applied them. With retention on, entries are removed 1 s after every store applied them
/// (a round every 250 ms, 1,000 per transaction) and tombstones and freed pages go too, so truncation and incremental
/// vacuum run all through the measured iterations. Reported per change. Each method's GlobalCleanup prints the three
/// files' size (with their WAL) at the start, the peak after any invocation, and the end, for benchmarks/README.md.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 10, iterationCount: 30)]
public class SqliteRetentionBenchmarks
{
    private const int Changes = 5_000;
    private const int BatchSize = 250;
    private const int Keys = 2_000;
    private SyncEntity[] _data = [];
    private string _directory = "";
    private EngineHost? _engine;
    private string _method = "";
    private long _startBytes;
    private long _peakBytes;
    private int _round;

    [GlobalSetup(Target = nameof(RetentionOff))]
    public void SetupOff() => Setup(nameof(RetentionOff), enabled: false);

    [GlobalSetup(Target = nameof(RetentionOn))]
    public void SetupOn() => Setup(nameof(RetentionOn), enabled: true);

    [GlobalCleanup]
    public async Task Cleanup()
    {
        var end = Bytes();
        var rows = await LogRowsAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// RETENTION-SIZES {_method}: start {_startBytes:N0} B, peak {_peakBytes:N0} B, end {end:N0} B, log rows {rows:N0}"));
        if (_engine is not null)
        {
            await _engine.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Changes, Description = "retention off")]
    public Task<SyncWaitOutcome> RetentionOff() => WriteAsync();

    [Benchmark(OperationsPerInvoke = Changes, Description = "retention on: truncation, tombstone purge, incremental vacuum")]
    public Task<SyncWaitOutcome> RetentionOn() => WriteAsync();

    private void Setup(string method, bool enabled)
    {
        _method = method;
        _data = BenchmarkData.Entities(Keys);
        _directory = Directory.CreateTempSubdirectory("css-bench-retention").FullName;
        _engine = EngineHost.Start(
            b => b.UseSqlite(o => o.DirectoryPath = _directory),
            o =>
            {
                o.DispatchBatchSize = 1000;
                o.Retention.Enabled = enabled;
                o.Retention.KeepAppliedFor = TimeSpan.FromSeconds(1);
                o.Retention.TruncationInterval = TimeSpan.FromMilliseconds(250);
                o.Retention.TombstoneRetention = TimeSpan.FromSeconds(1);
            });
        _startBytes = Bytes();
    }

    private async Task<SyncWaitOutcome> WriteAsync()
    {
        var manager = _engine!.Manager;
        SyncTicket last = default;
        for (var written = 0; written < Changes; written += BatchSize)
        {
            var start = (_round * Changes + written) % Keys;
            last = await manager.WriteBatchAsync(new ArraySegment<SyncEntity>(_data, start, Math.Min(BatchSize, Keys - start)));
        }

        // A few deletes per invocation, so tombstones accumulate and are purged (with retention on).
        last = await manager.DeleteAsync(_data[_round % Keys].Key);
        _round++;
        var outcome = await manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
        _peakBytes = Math.Max(_peakBytes, Bytes());
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }

    private long Bytes() =>
        _engine!.Services.GetRequiredService<SqliteChangeLog>().FileBytes()
        + _engine.Services.GetRequiredService<SqliteVectorStore>().FileBytes()
        + _engine.Services.GetRequiredService<SqliteGraphStore>().FileBytes();

    private async Task<long> LogRowsAsync() => await _engine!.Services.GetRequiredService<SqliteChangeLog>().CountEntriesAsync(CancellationToken.None);
}
