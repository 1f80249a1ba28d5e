using System.Text;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Replication;

/// <summary>Peer replication end to end (AddPeering over loopback HTTP) with PostgreSQL sources, alone and beside SQLite.</summary>
public sealed class PostgresPeeringTests
{
    private static readonly TimeSpan Wait = PeerCluster.Wait;

    private static SyncEntity Note(string id, string text) => SyncEntity.FromJson(
        new EntityKey("notes", id),
        $$"""{"text":"{{text}}"}""",
        new float[] { 1, 2, 3, text.Length },
        [new SyncEdge("LINKS", new EntityKey("notes", "n0"))]);

    [Fact]
    public async Task A_write_on_a_postgres_node_reaches_every_store_of_another_and_is_not_echoed()
    {
        await using var cluster = await PeerCluster.CreateAsync(2, _ => true);
        var a = await cluster.StartAsync(1);
        var b = await cluster.StartAsync(2);

        var ticket = await a.Manager.WriteBatchAsync([Note("x", "hello"), Note("y", "world")]);
        Assert.True(await a.Peering.WaitForReplicationAsync(ticket, null, Wait));
        var x = await b.StateAsync("x");
        Assert.Equal((1, 1), (x!.Change.Version.NodeId, x.ReceivedFrom));
        Assert.Equal("""{"text":"hello"}""", Encoding.UTF8.GetString(x.Change.Entity!.Document.Span));

        // B's replicas follow its own log, which holds the received states.
        Assert.Equal(SyncWaitOutcome.Synced, await b.WaitForReplicasAsync(PeerCluster.Wait));
        Assert.Equal(2, await b.Services.GetRequiredService<SqliteVectorStore>().CountAsync("notes", CancellationToken.None));
        Assert.Single(await b.Services.GetRequiredService<SqliteGraphStore>().GetNeighborsAsync(new EntityKey("notes", "x"), "LINKS", EdgeDirection.Outgoing, CancellationToken.None));

        // A delete on B travels back; nothing A sent is echoed to it.
        var deleted = await b.Manager.DeleteAsync(new EntityKey("notes", "y"));
        Assert.True(await b.Peering.WaitForReplicationAsync(deleted, [1], Wait));
        Assert.Equal(ChangeKind.Delete, (await a.StateAsync("y"))!.Change.Kind);
        await a.Peering.SyncNowAsync(2);
        await b.Peering.SyncNowAsync(1);
        Assert.Equal(3, await a.HeadAsync());
        Assert.Equal(3, await b.HeadAsync());
        Assert.Null(b.Peering.GetStatus().Single(s => s.NodeId == 1).LastError);
    }

    [Fact]
    public async Task Concurrent_edits_on_two_postgres_nodes_are_a_recorded_conflict_and_both_keep_the_last_writer()
    {
        await using var cluster = await PeerCluster.CreateAsync(2, _ => true);
        var (a, b, first, second) = await WriteWhileApartAsync(cluster);
        await a.Peering.SyncNowAsync(2);
        await b.Peering.SyncNowAsync(1);

        await AssertConvergedWithOneConflictAsync(a, b, first, second);
    }

    [Fact]
    public async Task A_sqlite_node_and_a_postgres_node_replicate_to_each_other()
    {
        await using var cluster = await PeerCluster.CreateAsync(2, nodeId => nodeId == 2);
        var lite = await cluster.StartAsync(1);
        var pg = await cluster.StartAsync(2);

        var fromLite = await lite.Manager.WriteBatchAsync([Note("l1", "from sqlite"), Note("gone", "soon deleted")]);
        var fromPg = await pg.Manager.WriteAsync(Note("p1", "from postgres"));
        Assert.True(await lite.Peering.WaitForReplicationAsync(fromLite, [2], Wait));
        Assert.True(await pg.Peering.WaitForReplicationAsync(fromPg, [1], Wait));
        var deleted = await pg.Manager.DeleteAsync(new EntityKey("notes", "gone"));
        Assert.True(await pg.Peering.WaitForReplicationAsync(deleted, [1], Wait));

        Assert.Equal(1, (await pg.StateAsync("l1"))!.ReceivedFrom);
        Assert.Equal(2, (await lite.StateAsync("p1"))!.ReceivedFrom);
        Assert.Equal(ChangeKind.Delete, (await lite.StateAsync("gone"))!.Change.Kind);
        Assert.Equal(SyncWaitOutcome.Synced, await pg.WaitForReplicasAsync(PeerCluster.Wait));
        Assert.Equal(2, await pg.Services.GetRequiredService<SqliteVectorStore>().CountAsync("notes", CancellationToken.None));

        // The two sources digest their states the same way (tombstones included): Merkle repair finds nothing to do.
        foreach (var (node, peer) in new[] { (lite, 2), (pg, 1) })
        {
            var report = await node.Peering.RepairAsync(peer);
            Assert.All(report.Collections, c => Assert.Equal((0, 0), (c.DifferingLeaves, c.Written)));
        }

        await lite.StopAsync();
        await pg.StopAsync();
        var (a, b, first, second) = await WriteWhileApartAsync(cluster);
        await b.Peering.SyncNowAsync(1);
        await a.Peering.SyncNowAsync(2);
        await AssertConvergedWithOneConflictAsync(a, b, first, second);
    }

    /// <summary>Each node edits the same note while the other is down: neither has seen the other's edit.</summary>
    private static async Task<(PeerNode A, PeerNode B, SyncTicket First, SyncTicket Second)> WriteWhileApartAsync(PeerCluster cluster)
    {
        var a = await cluster.StartAsync(1);
        var first = await a.Manager.WriteAsync(Note("c", "edited on 1"));
        await a.StopAsync();
        var b = await cluster.StartAsync(2);
        var second = await b.Manager.WriteAsync(Note("c", "edited on 2"));
        await b.StopAsync();
        return (await cluster.StartAsync(1), await cluster.StartAsync(2), first, second);
    }

    private static async Task AssertConvergedWithOneConflictAsync(PeerNode a, PeerNode b, SyncTicket first, SyncTicket second)
    {
        var winner = first.Version > second.Version ? first.Version : second.Version;
        var loser = first.Version > second.Version ? second.Version : first.Version;
        var atA = await a.StateAsync("c");
        var atB = await b.StateAsync("c");
        Assert.Equal(winner, atA!.Change.Version);
        Assert.Equal(winner, atB!.Change.Version);
        Assert.Equal(atA.Change.ContentHash, atB.Change.ContentHash);

        var conflicts = (await a.Peering.GetConflictsAsync("notes", "c")).Concat(await b.Peering.GetConflictsAsync("notes", "c")).ToList();
        Assert.NotEmpty(conflicts);
        Assert.All(conflicts, c => Assert.Equal((loser, winner), (c.Loser.Version, c.Winner)));
        Assert.All(conflicts, c => Assert.StartsWith("""{"text":"edited on """, Encoding.UTF8.GetString(c.Loser.Entity!.Document.Span), StringComparison.Ordinal));
    }
}
