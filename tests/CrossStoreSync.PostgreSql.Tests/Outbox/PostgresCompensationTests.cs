using System.Text;
using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Outbox;

/// <summary>The compensation scenarios on the PostgreSQL outbox: prior states and decisions in the source's own transactions.</summary>
public sealed class PostgresCompensationTests : CompensationScenarioTests, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"css-pgcomp-{Guid.NewGuid():N}");
    private TestDatabase _database = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresServer.CreateDatabaseAsync("cscomp");
        Directory.CreateDirectory(_dir);
    }

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left to the temp cleaner.
        }
    }

    protected override async Task<ICompensationHarness> StartAsync() =>
        await PostgresCompensationHarness.StartAsync(_database, _dir, coupled: true);

    [Fact]
    public async Task Two_workers_sharing_the_log_compensate_a_rejected_write_exactly_once()
    {
        var vectors = new InMemoryVectorStore("vectors");
        var graph = new InMemoryGraphStore("graph");
        var faults = new StoreFaults();
        faults.RejectChanges(Revision("k", 2), "refused by the vector index");
        Task<EngineHost> Worker(string id) => EngineHost.StartAsync(
            b => b.UsePostgreSql(o =>
                {
                    o.ConnectionString = _database.ConnectionString;
                    o.Partitions = 4;
                })
                .AddReplica("vectors", _ => new FaultInjectingVectorStore(vectors, faults))
                .AddReplica("graph", _ => graph),
            o =>
            {
                o.AddCollection(Collection, Dimension, onReplicaRejection: ReplicaRejectionPolicy.Compensate);
                o.WorkerId = id;
            });

        await using var a = await Worker("a");
        await using var b = await Worker("b");
        Assert.Equal(SyncWaitOutcome.Synced, await a.Manager.WaitForSyncAsync(await a.Manager.WriteAsync(Item("k", 1)), Wait));
        var rejected = await a.Manager.WriteAsync(Item("k", 2));

        var seenByA = await a.Manager.WaitForSyncResultAsync(rejected, Wait);
        var seenByB = await b.Manager.WaitForSyncResultAsync(rejected, Wait);
        Assert.Equal(SyncWaitOutcome.Compensated, seenByA.Outcome);
        Assert.Equal(SyncWaitOutcome.Compensated, seenByB.Outcome);
        var record = Assert.Single(await b.Manager.GetCompensationsAsync());
        Assert.Equal(CompensationState.Compensated, record.State);

        // Two writes and one compensating change: no second compensation by the other worker.
        Assert.Equal(3L, await _database.ScalarAsync("SELECT count(*) FROM crossstoresync.log_entries WHERE id = 'k'"));
        var held = await ((IDocumentStore)a.Services.GetRequiredService<SyncEngine>().Topology.Source).ReadAsync(Key("k"), CancellationToken.None);
        Assert.Contains("\"rev\":1", held!.Entity.DocumentText, StringComparison.Ordinal);
        Assert.Equal(held.Version, vectors.GetVersion(Key("k")));
        Assert.Equal(held.Version, graph.GetVersion(Key("k")));
    }

    [Fact]
    public async Task Prior_state_is_kept_in_the_write_transaction_and_written_back_by_the_compensation()
    {
        await using var h = await StartAsync();
        Assert.Equal(SyncWaitOutcome.Synced, await h.Manager.WaitForSyncAsync(await h.Manager.WriteAsync(Item("p", 1)), Wait));
        var second = await h.Manager.WriteAsync(Item("p", 2));
        await h.Manager.WaitForSyncAsync(second, Wait);

        // Armed with the first revision as its prior state, in the same commit as the write.
        var prior = (byte[])(await _database.ScalarAsync($"SELECT prior_payload FROM crossstoresync.compensations WHERE lsn = {second.Lsns.First}"))!;
        Assert.Contains("\"rev\":1", Encoding.UTF8.GetString(prior), StringComparison.Ordinal);
        Assert.Equal((short)CompensationState.Armed, await _database.ScalarAsync($"SELECT state FROM crossstoresync.compensations WHERE lsn = {second.Lsns.First}"));
    }
}

/// <summary>The compensation scenarios with the PostgreSQL log and a separate (SQLite) source: the pending → committed path.</summary>
public sealed class PostgresSeparateSourceCompensationTests : CompensationScenarioTests, IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"css-pgcomp-{Guid.NewGuid():N}");
    private TestDatabase _database = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresServer.CreateDatabaseAsync("cscomp");
        Directory.CreateDirectory(_dir);
    }

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left to the temp cleaner.
        }
    }

    protected override async Task<ICompensationHarness> StartAsync() =>
        await PostgresCompensationHarness.StartAsync(_database, _dir, coupled: false);
}

/// <summary>The PostgreSQL log (with its source, or with a SQLite source) and SQLite replicas behind fault plans.</summary>
internal sealed class PostgresCompensationHarness(EngineHost engine, StoreFaults vectorFaults, StoreFaults graphFaults) : ICompensationHarness
{
    public ISyncManager Manager => engine.Manager;

    public IServiceProvider Services => engine.Services;

    public IDocumentStore Source => Services.GetRequiredService<SyncEngine>().Topology.Source;

    public ISyncStore Vectors => Services.GetRequiredService<SqliteVectorStore>();

    public ISyncStore Graph => Services.GetRequiredService<SqliteGraphStore>();

    public StoreFaults VectorFaults => vectorFaults;

    public StoreFaults GraphFaults => graphFaults;

    public Func<CompensationRecord, CancellationToken, Task>? BeforeCompensate
    {
        set => Services.GetRequiredService<SyncEngine>().BeforeCompensate = value;
    }

    public static async Task<PostgresCompensationHarness> StartAsync(TestDatabase database, string dir, bool coupled)
    {
        var vectorFaults = new StoreFaults();
        var graphFaults = new StoreFaults();
        var engine = await EngineHost.StartAsync(
            b =>
            {
                b.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(dir, "vectors.db"), "vectors"));
                b.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(dir, "graph.db"), "graph"));
                if (coupled)
                {
                    b.UsePostgreSql(o =>
                    {
                        o.ConnectionString = database.ConnectionString;
                        o.Partitions = 4;
                    });
                }
                else
                {
                    b.UsePostgreSqlChangeLog(o =>
                    {
                        o.ConnectionString = database.ConnectionString;
                        o.Partitions = 4;
                    })
                    .UseSourceOfTruth(_ => new SqliteDocumentStore(Path.Combine(dir, "docs.db")));
                }

                b.AddReplica("vectors", sp => new FaultInjectingVectorStore(sp.GetRequiredService<SqliteVectorStore>(), vectorFaults))
                 .AddReplica("graph", sp => new FaultInjectingGraphStore(sp.GetRequiredService<SqliteGraphStore>(), graphFaults));
            },
            o => o.AddCollection("items", 8, onReplicaRejection: ReplicaRejectionPolicy.Compensate));
        return new PostgresCompensationHarness(engine, vectorFaults, graphFaults);
    }

    public ValueTask DisposeAsync() => engine.DisposeAsync();
}
