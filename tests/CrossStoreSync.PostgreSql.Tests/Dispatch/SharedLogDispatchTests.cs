using System.Text;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Dispatch;

/// <summary>Several engines (workers) dispatching one PostgreSQL change log, in one process.</summary>
public sealed class SharedLogDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly InMemoryDocumentStore _source = new();
    private readonly InMemoryVectorStore _vectors = new();
    private readonly InMemoryGraphStore _graph = new();
    private TestDatabase _database = null!;

    public async Task InitializeAsync() => _database = await PostgresServer.CreateDatabaseAsync("csdispatch");

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private Task<EngineHost> StartWorkerAsync(string worker) =>
        EngineHost.StartAsync(
            b => b.UsePostgreSqlChangeLog(o =>
                {
                    o.ConnectionString = _database.ConnectionString;
                    o.Partitions = 8;
                })
                .UseSourceOfTruth(_ => _source)
                .AddReplica("vectors", _ => _vectors)
                .AddReplica("graph", _ => _graph),
            o => o.WorkerId = worker);

    private static SyncEntity Entity(int id, int round) =>
        new(new EntityKey("items", $"e{id}"), Encoding.UTF8.GetBytes($$"""{"round":{{round}}}"""), new float[] { round, id, 1, 1 }, [new SyncEdge("next", new EntityKey("items", $"e{id + 1}"))]);

    [Fact]
    public async Task One_worker_dispatches_every_partition_and_waits_see_every_store()
    {
        await using var engine = await StartWorkerAsync("solo");
        var partitions = await engine.WaitForEventAsync(e => e.Kind == SyncEventKind.PartitionsChanged && e.Store == "vectors", Timeout);
        Assert.Equal(8, partitions.Count);

        SyncTicket ticket = default;
        for (var round = 0; round < 3; round++)
        {
            ticket = await engine.Manager.WriteBatchAsync([.. Enumerable.Range(0, 100).Select(i => Entity(i, round))]);
        }

        await engine.Manager.DeleteAsync(new EntityKey("items", "e7"));
        ticket = await engine.Manager.WriteAsync(Entity(1000, 0));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Timeout));
        await AssertReplicasMatchSourceAsync();
        var status = await engine.Manager.GetStatusAsync(new EntityKey("items", "e3"));
        Assert.True(status.IsSynced);
    }

    [Fact]
    public async Task Two_workers_split_the_partitions_and_the_survivor_takes_over_when_one_stops()
    {
        await using var a = await StartWorkerAsync("worker-a");
        await a.WaitForEventAsync(e => e.Kind == SyncEventKind.PartitionsChanged && e.Store == "vectors" && e.Count == 8, Timeout);
        var b = await StartWorkerAsync("worker-b");
        try
        {
            // A gives back half when it sees B; B claims them.
            await b.WaitForEventAsync(e => e.Kind == SyncEventKind.PartitionsChanged && e.Store == "vectors" && e.Count == 4, Timeout);
            await a.WaitForEventAsync(e => e.Kind == SyncEventKind.PartitionsChanged && e.Store == "vectors" && e.Count == 4, Timeout);

            // Writes through both; every store ends up with the newest version of each key, whoever applied it.
            var writes = new[] { a, b }.Select((engine, w) => Task.Run(async () =>
            {
                SyncTicket last = default;
                for (var round = 0; round < 5; round++)
                {
                    last = await engine.Manager.WriteBatchAsync([.. Enumerable.Range(w * 1000, 200).Select(i => Entity(i, round))]);
                }

                return last;
            })).ToArray();
            var tickets = await Task.WhenAll(writes);
            var latest = tickets.MaxBy(t => t.Lsns.Last);
            Assert.Equal(SyncWaitOutcome.Synced, await a.Manager.WaitForSyncAsync(latest, Timeout));
            Assert.Equal(SyncWaitOutcome.Synced, await b.Manager.WaitForSyncAsync(latest, Timeout));
            await AssertReplicasMatchSourceAsync();
            Assert.Equal(4L, await _database.ScalarAsync("SELECT count(*) FROM crossstoresync.partition_cursors WHERE store = 'vectors' AND owner = 'worker-b'"));

            // Each worker's statistics see the other's appends: the head and the cursors cover both, no lag left.
            var last = latest.Lsns.Last;
            foreach (var engine in new[] { a, b })
            {
                var stats = await engine.Manager.GetStatisticsAsync();
                Assert.All(stats, s => Assert.True(s.Cursor >= last, $"{s.Store}: cursor {s.Cursor} < {last}"));
                Assert.All(stats.Where(s => !s.IsSource), s => Assert.Equal(0, s.LagChanges));
            }
        }
        finally
        {
            await b.DisposeAsync();
        }

        // B stopped cleanly and gave its partitions back: A holds all eight again and applies new writes to all of them.
        await a.WaitForEventAsync(e => e.Kind == SyncEventKind.PartitionsChanged && e.Store == "vectors" && e.Count == 8, Timeout);
        var after = await a.Manager.WriteBatchAsync([.. Enumerable.Range(0, 300).Select(i => Entity(i, 9))]);
        Assert.Equal(SyncWaitOutcome.Synced, await a.Manager.WaitForSyncAsync(after, Timeout));
        await AssertReplicasMatchSourceAsync();
    }

    private async Task AssertReplicasMatchSourceAsync()
    {
        var source = new Dictionary<string, EntityDigest>();
        await foreach (var d in _source.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            source[d.Key.Id] = d;
        }

        foreach (ISyncStore replica in new ISyncStore[] { _vectors, _graph })
        {
            var held = new Dictionary<string, EntityDigest>();
            await foreach (var d in replica.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
            {
                held[d.Key.Id] = d;
            }

            Assert.Equal(source.Keys.Order(), held.Keys.Order());
            foreach (var (id, digest) in source)
            {
                Assert.Equal((digest.Version, digest.RecordedHash), (held[id].Version, held[id].RecordedHash));
            }
        }
    }
}
