using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Tests;

public sealed class SqliteGraphStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Rewriting_a_node_whose_row_was_deleted_out_of_band_replaces_its_left_over_edges()
    {
        await using var graph = new SqliteGraphStore(_dir.File("graph.db"));
        await graph.InitializeAsync([new CollectionDefinition("items", null, VectorDistance.Cosine)], CancellationToken.None);
        var key = new EntityKey("items", "a");
        await graph.ApplyAsync([EntityChange.Upsert(new SyncEntity(key, "{}"u8.ToArray(), default, [new SyncEdge("OLD", new EntityKey("items", "b")), new SyncEdge("OLD", new EntityKey("items", "c"))]), new HlcTimestamp(1))], CancellationToken.None);

        // Another program deletes the node row but leaves its edges behind.
        await using (var connection = new SqliteConnection($"Data Source={graph.DatabasePath}"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM nodes WHERE id = 'a'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        await graph.ApplyAsync([EntityChange.Upsert(new SyncEntity(key, "{}"u8.ToArray(), default, [new SyncEdge("NEW", new EntityKey("items", "d"))]), new HlcTimestamp(2))], CancellationToken.None);

        var outgoing = await graph.GetNeighborsAsync(key, null, EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal([("NEW", "d")], outgoing.Select(n => (n.EdgeType, n.Key.Id)).ToArray());
    }
}
