using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Write on node 1 → visible in every store of node 2 (source, vector, graph), under a steady background load of
/// 1,000 writes/s on node 1 that node 2 replicates too (issue 12: p99 ≤ 100 ms). Each measured iteration writes one
/// entity on node 1 and waits, on node 2's own signals (its log head, then its dispatchers), until all of node 2's
/// stores hold it. Read the P99 column. Baseline: the same write and wait on one local engine under the same load.
/// </summary>
[Config(typeof(Columns))]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 30, iterationCount: 500, invocationCount: 1)]
public class PeerLatencyBenchmarks
{
    private const int BackgroundBatch = 10; // every 10 ms: 1,000 writes/s
    private readonly CancellationTokenSource _stop = new();
    private SyncEntity[] _data = [];
    private PeerNodes? _nodes;
    private PeerNodes.Node? _sender;
    private PeerNodes.Node? _receiver;
    private EngineHost? _local;
    private string _localDirectory = "";
    private Task _background = Task.CompletedTask;
    private int _next;

    [GlobalSetup(Target = nameof(LocalEngine))]
    public void SetupLocal()
    {
        _data = BenchmarkData.Entities(20_000, seed: 11);
        _localDirectory = Directory.CreateTempSubdirectory("css-bench-peer-latency-local").FullName;
        _local = EngineHost.Start(b => b.UseSqlite(o => o.DirectoryPath = _localDirectory));
        var manager = _local.Manager;
        _background = Background(async batch => await manager.WriteBatchAsync(batch));
    }

    [GlobalSetup(Target = nameof(AcrossNodes))]
    public void SetupNodes()
    {
        _data = BenchmarkData.Entities(20_000, seed: 11);
        _nodes = new PeerNodes(2, Directory.CreateTempSubdirectory("css-bench-peer-latency").FullName);
        _sender = _nodes.Start(1);
        _receiver = _nodes.Start(2);
        var manager = _sender.Manager;
        _background = Background(async batch => await manager.WriteBatchAsync(batch));
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _stop.CancelAsync();
        await _background;
        if (_local is not null)
        {
            await _local.DisposeAsync();
            SqliteConnection.ClearAllPools();
            Directory.Delete(_localDirectory, true);
        }

        if (_nodes is not null)
        {
            await _nodes.DisposeAsync();
        }
    }

    [Benchmark(Baseline = true, Description = "local: write 1, visible in all 3 of its stores, under 1,000/s")]
    public async Task<SyncWaitOutcome> LocalEngine()
    {
        var ticket = await _local!.Manager.WriteAsync(Next());
        return await _local.Manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(30));
    }

    [Benchmark(Description = "peers: write 1 on node 1, visible in all 3 stores of node 2, under 1,000/s")]
    public async Task<SyncWaitOutcome> AcrossNodes()
    {
        var entity = Next();
        var written = await _sender!.Manager.WriteAsync(entity);
        var writer = _receiver!.Writer;
        var log = await writer.GetLogAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            // Read the head before the state, so an append in between wakes the wait below.
            var head = writer.Head;
            var state = (await log.ReadStatesAsync([entity.Key], timeout.Token)).FirstOrDefault();
            if (state is not null && state.Change.Version >= written.Version)
            {
                break;
            }

            await writer.WaitForHeadAsync(head, timeout.Token);
        }

        // Dispatchers advance in log order: passing the head entry means the entry holding the state is applied too.
        var visible = writer.Head;
        return await _receiver.Manager.WaitForSyncAsync(new SyncTicket(new LsnRange(visible, visible), default), TimeSpan.FromSeconds(30));
    }

    private SyncEntity Next() => _data[Interlocked.Increment(ref _next) % 10_000];

    private Task Background(Func<ArraySegment<SyncEntity>, Task> write) => Task.Run(async () =>
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        var offset = 0;
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

    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumn(StatisticColumn.Median, StatisticColumn.P95, new P99Column(), StatisticColumn.Max);
    }
}
