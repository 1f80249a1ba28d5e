using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>The compensation scenarios on the coupled SQLite log: prior states and decisions in the source's own transactions.</summary>
public sealed class SqliteCompensationTests : CompensationScenarioTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    protected override async Task<ICompensationHarness> StartAsync() => await SqliteCompensationHarness.StartAsync(_dir, coupled: true);

    [Fact]
    public async Task Write_older_than_the_compensating_change_lands_on_top_of_it()
    {
        await using var log = new SqliteChangeLog(_dir.File("log.db"));
        await log.InitializeAsync(CancellationToken.None);
        await log.Documents.InitializeAsync([new CollectionDefinition(Collection, Dimension, VectorDistance.Cosine)], CancellationToken.None);
        var v1 = new HlcTimestamp(1_000, 0, 0);
        var first = await log.AppendAndApplyAsync([EntityChange.Upsert(Item("k", 1), v1)], [true], null, Above, CancellationToken.None);
        var v2 = new HlcTimestamp(2_000, 0, 0);
        await log.AppendAndApplyAsync([EntityChange.Upsert(Item("k", 2), v2)], [true], null, Above, CancellationToken.None);
        var request = await log.RequestCompensationAsync(Key("k"), v2, "vectors", "refused", DateTimeOffset.UnixEpoch, CancellationToken.None);
        Assert.Equal(CompensationState.Requested, request?.State);
        Assert.Equal(v1, request!.Prior.Version);
        Assert.Null(await log.RequestCompensationAsync(Key("k"), new HlcTimestamp(1_500, 0, 0), "vectors", "no such write", DateTimeOffset.UnixEpoch, CancellationToken.None));
        Assert.Empty(await log.ListCompensationsAsync(new CompensationQuery(10) { Lsns = new LsnRange(first.First, first.Last) }, CancellationToken.None));

        var compensating = new HlcTimestamp(3_000, 0, 0);
        var outcome = await log.CompensateAsync(request.Lsn, (record, held) => EntityChange.Upsert(record.Prior.Entity!, compensating, record.Prior.ContentHash), DateTimeOffset.UnixEpoch, CancellationToken.None);
        Assert.True(outcome.ResolvedNow);
        Assert.Equal(compensating, (await log.Documents.ReadAsync(Key("k"), CancellationToken.None))!.Version);

        // A write that took its version (2,500) before the compensating change but commits after it is restamped above it.
        EntityChange[] late = [EntityChange.Upsert(Item("k", 3), new HlcTimestamp(2_500, 0, 0))];
        await log.AppendAndApplyAsync(late, [true], null, Above, CancellationToken.None);
        Assert.True(late[0].Version > compensating);
        var held = await log.Documents.ReadAsync(Key("k"), CancellationToken.None);
        Assert.Equal(late[0].Version, held!.Version);
        Assert.Equal(late[0].ContentHash, held.ContentHash);

        // The second resolution of a record is refused; the record keeps its first.
        Assert.False((await log.CompensateAsync(request.Lsn, (r, _) => throw new InvalidOperationException("not called"), DateTimeOffset.UnixEpoch, CancellationToken.None)).ResolvedNow);

        static EntityChange Above(EntityChange change, HlcTimestamp held) => EntityChange.Upsert(change.Entity!, new HlcTimestamp(held.WallTimeMs + 1, 0, 0), change.ContentHash);
    }

    [Fact]
    public async Task Prior_state_altered_on_disk_is_reported_not_restored()
    {
        await using (var log = new SqliteChangeLog(_dir.File("log.db")))
        {
            await log.InitializeAsync(CancellationToken.None);
            await log.Documents.InitializeAsync([new CollectionDefinition(Collection, Dimension, VectorDistance.Cosine)], CancellationToken.None);
            await log.AppendAndApplyAsync([EntityChange.Upsert(Item("k", 1), new HlcTimestamp(1_000, 0, 0))], [true], null, (c, _) => c, CancellationToken.None);
            await log.AppendAndApplyAsync([EntityChange.Upsert(Item("k", 2), new HlcTimestamp(2_000, 0, 0))], [true], null, (c, _) => c, CancellationToken.None);
        }

        await using (var connection = new SqliteConnection($"Data Source={_dir.File("log.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE compensations SET prior_version = prior_version + 1 WHERE lsn = 2";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        await using var reopened = new SqliteChangeLog(_dir.File("log.db"));
        await reopened.InitializeAsync(CancellationToken.None);
        var error = await Assert.ThrowsAsync<ChangeLogCorruptedException>(async () =>
            await reopened.ListCompensationsAsync(new CompensationQuery(10) { State = CompensationState.Armed }, CancellationToken.None));
        Assert.Equal(2, error.Lsn);
        Assert.Equal("compensation", error.Field);
    }
}

/// <summary>The compensation scenarios with the SQLite log and a separate SQLite source (the pending → committed path).</summary>
public sealed class SqliteSeparateSourceCompensationTests : CompensationScenarioTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    protected override async Task<ICompensationHarness> StartAsync() => await SqliteCompensationHarness.StartAsync(_dir, coupled: false);
}

/// <summary>SQLite log and source (coupled or in separate files) with SQLite vector and graph replicas behind fault plans.</summary>
internal sealed class SqliteCompensationHarness : ICompensationHarness
{
    private readonly TestEngine _engine;

    private SqliteCompensationHarness(TestEngine engine, IDocumentStore source, StoreFaults vectorFaults, StoreFaults graphFaults)
    {
        _engine = engine;
        Source = source;
        VectorFaults = vectorFaults;
        GraphFaults = graphFaults;
    }

    public ISyncManager Manager => _engine.Manager;

    public IServiceProvider Services => _engine.Services;

    public IDocumentStore Source { get; }

    public ISyncStore Vectors => Services.GetRequiredService<SqliteVectorStore>();

    public ISyncStore Graph => Services.GetRequiredService<SqliteGraphStore>();

    public StoreFaults VectorFaults { get; }

    public StoreFaults GraphFaults { get; }

    public Func<CompensationRecord, CancellationToken, Task>? BeforeCompensate
    {
        set => Services.GetRequiredService<SyncEngine>().BeforeCompensate = value;
    }

    public static async Task<SqliteCompensationHarness> StartAsync(TempDirectory dir, bool coupled)
    {
        var vectorFaults = new StoreFaults();
        var graphFaults = new StoreFaults();
        var engine = await TestEngine.StartAsync(
            b =>
            {
                b.Services.AddSingleton(_ => new SqliteChangeLog(dir.File("log.db")));
                b.Services.AddSingleton(_ => new SqliteDocumentStore(dir.File("docs.db")));
                b.Services.AddSingleton(_ => new SqliteVectorStore(dir.File("vectors.db"), "vectors"));
                b.Services.AddSingleton(_ => new SqliteGraphStore(dir.File("graph.db"), "graph"));
                b.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
                 .UseSourceOfTruth(sp => coupled ? sp.GetRequiredService<SqliteChangeLog>().Documents : sp.GetRequiredService<SqliteDocumentStore>())
                 .AddReplica("vectors", sp => new FaultInjectingVectorStore(sp.GetRequiredService<SqliteVectorStore>(), vectorFaults))
                 .AddReplica("graph", sp => new FaultInjectingGraphStore(sp.GetRequiredService<SqliteGraphStore>(), graphFaults));
            },
            o => o.AddCollection("items", 8, onReplicaRejection: ReplicaRejectionPolicy.Compensate));
        var source = coupled
            ? (IDocumentStore)engine.Services.GetRequiredService<SqliteChangeLog>().Documents
            : engine.Services.GetRequiredService<SqliteDocumentStore>();
        return new SqliteCompensationHarness(engine, source, vectorFaults, graphFaults);
    }

    public ValueTask DisposeAsync() => _engine.DisposeAsync();
}
