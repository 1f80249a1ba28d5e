using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// Replication throughput between two nodes on loopback (issue 12): node 1 holds 5,000 changed entities (1 KB
/// document, 384-d vector, 2 edges, SQLite stores); node 2 pulls them over the protocol (handshake session, signed
/// chunks, Ed25519) and applies them to its source, vector and graph stores. Baseline: the local engine writing the
/// same 5,000 entities into its own SQLite log, source, vector and graph stores until synced — the work node 2 does,
/// without the network and the causal checks.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 8, iterationCount: 15)]
public class PeerReplicationThroughputBenchmarks
{
    private const int Entities = 5000;
    private const int BatchSize = 500;
    private SyncEntity[] _data = [];
    private PeerNodes? _nodes;
    private PeerNodes.Node? _sender;
    private PeerNodes.Node? _receiver;
    private EngineHost? _local;
    private string _localDirectory = "";

    // Each method gets only its own engines, so neither measures the other's idle hosts and files.
    [GlobalSetup(Target = nameof(Replicate))]
    public void SetupNodes()
    {
        _data = BenchmarkData.Entities(Entities);
        _nodes = new PeerNodes(2, Directory.CreateTempSubdirectory("css-bench-peers").FullName);
        _sender = _nodes.Start(1, pull: false, replicas: false);
        _receiver = _nodes.Start(2, pull: false);
    }

    [GlobalSetup(Target = nameof(LocalEngine))]
    public void SetupLocal()
    {
        _data = BenchmarkData.Entities(Entities);
        _localDirectory = Directory.CreateTempSubdirectory("css-bench-local").FullName;
        _local = EngineHost.Start(b => b.UseSqlite(o => o.DirectoryPath = _localDirectory), o => o.DispatchBatchSize = 1000);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        if (_local is not null)
        {
            await _local.DisposeAsync();
        }

        if (_nodes is not null)
        {
            await _nodes.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_localDirectory.Length > 0)
        {
            Directory.Delete(_localDirectory, true);
        }
    }

    /// <summary>Node 1 writes new versions of the entities; node 2 has not pulled them yet (it pulls on demand only).</summary>
    [IterationSetup(Target = nameof(Replicate))]
    public void WriteOnSender()
    {
        for (var start = 0; start < Entities; start += BatchSize)
        {
            _sender!.Manager.WriteBatchAsync(new ArraySegment<SyncEntity>(_data, start, BatchSize)).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Nothing to prepare; declared so both methods run in the same job (an iteration setup makes BenchmarkDotNet
    /// invoke once per iteration), which is what gives the Ratio column.
    /// </summary>
    [IterationSetup(Target = nameof(LocalEngine))]
    public void NothingToPrepare()
    {
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Entities, Description = "local engine: write into own log + source + vector + graph")]
    public async Task<SyncWaitOutcome> LocalEngine()
    {
        SyncTicket last = default;
        for (var start = 0; start < Entities; start += BatchSize)
        {
            last = await _local!.Manager.WriteBatchAsync(new ArraySegment<SyncEntity>(_data, start, BatchSize));
        }

        var outcome = await _local!.Manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
        return outcome == SyncWaitOutcome.Synced ? outcome : throw new InvalidOperationException($"Sync did not complete: {outcome}.");
    }

    [Benchmark(OperationsPerInvoke = Entities, Description = "peer: node 2 pulls from node 1 into its source + vector + graph")]
    public async Task<long> Replicate()
    {
        await _receiver!.Peering.SyncNowAsync(1);
        await _receiver.WaitForOwnStoresAsync();
        return _receiver.Writer.Head;
    }
}
