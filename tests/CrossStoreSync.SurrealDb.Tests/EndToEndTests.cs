using System.Globalization;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Internal;
using CrossStoreSync.SurrealDb.Stores;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.SurrealDb.Tests.Support;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>SurrealDB as the source of truth, SQLite vector and graph replicas, all through <c>AddCrossStoreSync</c>.</summary>
[Collection(SurrealDbCollection.Name)]
public sealed class EndToEndTests(SurrealDbHost host) : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static SyncEntity Item(int i, string text = "v1") => new(
        new EntityKey("items", "e-" + i.ToString("D4", CultureInfo.InvariantCulture)),
        Encoding.UTF8.GetBytes($$"""{"i":{{i}},"text":"{{text}}","when":"2024-01-0{{(i % 9) + 1}}T00:00:00Z"}"""),
        new float[] { (i % 5) + 1, 1, 0.5f, i % 3 },
        [new SyncEdge("NEXT", new EntityKey("items", "e-" + (i + 1).ToString("D4", CultureInfo.InvariantCulture)))]);

    private Task<TestEngine> StartAsync(SurrealDbOptions surreal, StoreFaults? vectorFaults = null) => TestEngine.StartAsync(b =>
    {
        b.UseSqlite(o =>
        {
            o.DirectoryPath = _dir.Path;
            o.Durable = false;
            o.VectorStoreName = vectorFaults is null ? "vectors" : null;
        });
        if (vectorFaults is not null)
        {
            b.AddReplica("faulty-vectors", _ => new FaultInjectingVectorStore(new SqliteVectorStore(_dir.File("faulty-vectors.db"), "vectors", durable: false), vectorFaults));
        }

        b.AddSurrealDbDocumentStore(o =>
        {
            o.Endpoint = surreal.Endpoint;
            o.Namespace = surreal.Namespace;
            o.Database = surreal.Database;
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
        });
    });

    private static string Record(EntityKey key)
    {
        var sql = new StringBuilder("type::record(");
        SurrealQl.String(sql, key.Collection).Append(',');
        return SurrealQl.String(sql, key.Id).Append(')').ToString();
    }

    [Fact]
    public async Task Writes_land_in_SurrealDB_and_flow_to_the_sqlite_vector_and_graph_replicas()
    {
        var options = host.NewDatabaseOptions();
        await using var engine = await StartAsync(options);
        var entities = Enumerable.Range(0, 300).Select(i => Item(i)).ToArray();

        await engine.Manager.WriteBatchAsync(entities);
        var ticket = await engine.Manager.DeleteAsync(entities[7].Key);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));

        var source = engine.Services.GetRequiredService<SurrealDbDocumentStore>();
        Assert.Equal(299, await source.CountAsync("items", CancellationToken.None));
        Assert.Equal(entities[3].Document.ToArray(), (await source.ReadAsync(entities[3].Key, CancellationToken.None))!.Entity.Document.ToArray());
        var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
        var graph = engine.Services.GetRequiredService<SqliteGraphStore>();
        Assert.Equal(299, await vectors.CountAsync("items", CancellationToken.None));
        var neighbours = await graph.GetNeighborsAsync(entities[3].Key, "NEXT", EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal(entities[4].Key, Assert.Single(neighbours).Key);

        var report = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
        Assert.Equal(options.StoreName, report.Source);
    }

    [Fact]
    public async Task A_replica_that_is_down_catches_up_when_it_returns()
    {
        var faults = new StoreFaults();
        await using var engine = await StartAsync(host.NewDatabaseOptions(), faults);
        faults.GoDown();

        var ticket = await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 120).Select(i => Item(i)).ToArray());
        Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(ticket, TimeSpan.FromMilliseconds(300)));
        var source = engine.Services.GetRequiredService<SurrealDbDocumentStore>();
        Assert.Equal(120, await source.CountAsync("items", CancellationToken.None)); // the source is not held up by the replica

        faults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));
        Assert.True(faults.InjectedFailures > 0);
        var report = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
        Assert.Contains(report.Stores, s => s.Store == "vectors");
    }

    [Fact]
    public async Task Edits_made_directly_in_SurrealDB_are_found_by_a_deep_check_and_repaired()
    {
        var options = host.NewDatabaseOptions();
        await using var engine = await StartAsync(options);
        var entities = Enumerable.Range(0, 200).Select(i => Item(i)).ToArray();
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(await engine.Manager.WriteBatchAsync(entities), Wait));
        var checker = engine.Services.GetRequiredService<IConsistencyChecker>();

        // Another program edits vectors and edges and deletes records, straight through SurrealQL.
        EntityKey[] vectorEdited = [entities[3].Key, entities[50].Key, entities[120].Key];
        EntityKey[] edgesEdited = [entities[10].Key, entities[99].Key];
        EntityKey[] deleted = [entities[20].Key, entities[150].Key];
        var sql = new StringBuilder();
        foreach (var key in vectorEdited)
        {
            sql.Append("UPDATE ").Append(Record(key)).Append(" SET vector = [9.0, 9.0, 9.0, 9.0];\n");
        }

        foreach (var key in edgesEdited)
        {
            sql.Append("UPDATE ").Append(Record(key)).Append(" SET edges = [{ type: 'INJECTED', collection: 'items', id: 'intruder' }];\n");
        }

        foreach (var key in deleted)
        {
            sql.Append("DELETE ").Append(Record(key)).Append(";\n");
        }

        await host.SqlAsync(options, sql.ToString());

        var report = await checker.CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        var vectors = report.Stores.Single(s => s.Store == "vectors");
        var graph = report.Stores.Single(s => s.Store == "graph");
        Assert.Equal(vectorEdited.Order(), vectors.Findings.Where(f => f.Kind == InconsistencyKind.Corrupted).Select(f => f.Key).Order());
        Assert.Equal(edgesEdited.Order(), graph.Findings.Where(f => f.Kind == InconsistencyKind.Corrupted).Select(f => f.Key).Order());
        Assert.Equal(deleted.Order(), vectors.Findings.Where(f => f.Kind == InconsistencyKind.Orphaned).Select(f => f.Key).Order());
        Assert.Equal(deleted.Order(), graph.Findings.Where(f => f.Kind == InconsistencyKind.Orphaned).Select(f => f.Key).Order());
        Assert.Equal(7, vectors.Inconsistent + graph.Inconsistent - deleted.Length);

        var repair = await checker.RepairAsync(report);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(repair.Ticket!.Value, Wait));

        var after = await checker.CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
        Assert.True(after.IsConsistent, string.Join("; ", after.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));

        // The edit made in SurrealDB won: the replica now holds it, at a version above the one the edit kept.
        var source = engine.Services.GetRequiredService<SurrealDbDocumentStore>();
        var edited = await source.ReadAsync(vectorEdited[0], CancellationToken.None);
        Assert.Equal(new float[] { 9, 9, 9, 9 }, edited!.Entity.Vector.ToArray());
        Assert.Contains(repair.Actions, a => a.Key == vectorEdited[0] && a.Version == edited.Version);
        var replica = Assert.Single(await engine.Services.GetRequiredService<SqliteVectorStore>().ReadDigestsAsync("items", [vectorEdited[0].Id], CancellationToken.None));
        Assert.Equal(ProjectionHash.Compute(edited.Entity, StoreKind.Vector), replica.ProjectionHash);
        Assert.Null(await source.ReadAsync(deleted[0], CancellationToken.None));
    }

    [Fact]
    public async Task Invalid_SurrealDB_options_stop_the_host_at_start_up()
    {
        var services = new ServiceCollection();
        services.AddCrossStoreSync(o => o.AddCollection("items", 4))
            .UseSqlite(o => o.DirectoryPath = _dir.Path)
            .AddSurrealDbDocumentStore(o => o.Endpoint = new Uri("ftp://nowhere"));
        await using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<SurrealDbOptions>>().Value);
        Assert.Contains("ftp://nowhere", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Registering_twice_keeps_one_store()
    {
        var services = new ServiceCollection();
        var builder = services.AddCrossStoreSync(o => o.AddCollection("items", 4)).UseSqlite(o => o.DirectoryPath = _dir.Path);
        builder.AddSurrealDbDocumentStore(o => o.Endpoint = new Uri("http://127.0.0.1:1"));
        builder.AddSurrealDbDocumentStore(o => o.Endpoint = new Uri("http://127.0.0.1:1"));

        Assert.Single(services, d => d.ServiceType == typeof(SurrealDbDocumentStore));
    }
}
