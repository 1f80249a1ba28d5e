using System.Globalization;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Stores;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Replication;

/// <summary>
/// Two nodes of one test, each with <c>UsePostgreSql</c> on a fresh database of its own and SQLite vector and graph
/// replicas in a scratch folder; states are exchanged by hand through <see cref="IReplicationWriter"/>, without a network.
/// </summary>
public abstract class TwoNodes : IAsyncLifetime
{
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"css-pgrepl-{Guid.NewGuid():N}");

    protected TestDatabase DatabaseA { get; private set; } = null!;

    protected TestDatabase DatabaseB { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        DatabaseA = await PostgresServer.CreateDatabaseAsync("csrepla");
        DatabaseB = await PostgresServer.CreateDatabaseAsync("csreplb");
        Directory.CreateDirectory(_directory);
    }

    public async Task DisposeAsync()
    {
        await DatabaseA.DisposeAsync();
        await DatabaseB.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a slow disposal is left to the temp cleaner.
        }
    }

    /// <summary>Starts node 1 on database A or node 2 on database B.</summary>
    protected Task<EngineHost> StartNode(int nodeId)
    {
        var database = nodeId == 1 ? DatabaseA : DatabaseB;
        var replicas = Path.Combine(_directory, "node" + nodeId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(replicas);
        return EngineHost.StartAsync(
            b =>
            {
                b.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(replicas, "vectors.db"), "vectors"));
                b.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(replicas, "graph.db"), "graph"));
                b.UsePostgreSql(o =>
                    {
                        o.ConnectionString = database.ConnectionString;
                        o.Partitions = 4;
                    })
                    .AddReplica("vectors", sp => sp.GetRequiredService<SqliteVectorStore>())
                    .AddReplica("graph", sp => sp.GetRequiredService<SqliteGraphStore>());
            },
            o => o.NodeId = nodeId);
    }

    protected static SyncEntity Item(string id, string text) => SyncEntity.FromJson(
        new EntityKey("items", id),
        $$"""{"text":"{{text}}"}""",
        new float[] { 1, 2, 3, text.Length },
        [new SyncEdge("NEXT", new EntityKey("items", "root"))]);

    protected static async Task<IReplicationLog> LogOf(EngineHost node) => await WriterOf(node).GetLogAsync();

    protected static IReplicationWriter WriterOf(EngineHost node) => node.Services.GetRequiredService<IReplicationWriter>();

    protected static async Task<StoredState> StateOf(EngineHost node, string id) =>
        Assert.Single(await (await LogOf(node)).ReadStatesAsync([new EntityKey("items", id)], CancellationToken.None));

    /// <summary>Pulls everything <paramref name="from"/>'s log holds after <paramref name="after"/> into <paramref name="to"/>.</summary>
    protected static async Task<(ReplicationWriteResult Result, long Through)> PullAsync(EngineHost from, EngineHost to, long after = 0)
    {
        var fromWriter = WriterOf(from);
        var toWriter = WriterOf(to);
        var log = await fromWriter.GetLogAsync();
        var states = new List<ReplicatedState>();
        var read = await log.ReadReplicationAsync(after, 1000, toWriter.NodeId, _ => true, states, CancellationToken.None);
        var result = await toWriter.ApplyAsync(new ReplicationBatch(fromWriter.NodeId, states) { Cursor = new LogCheckpoint("peer/test", read.ReadThrough.ToString(CultureInfo.InvariantCulture)) });
        return (result, read.ReadThrough);
    }
}
