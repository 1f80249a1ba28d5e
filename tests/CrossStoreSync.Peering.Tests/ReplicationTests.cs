using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>Nodes in one process exchanging over loopback HTTP with the real protocol.</summary>
public sealed class ReplicationTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(3);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_cursor_on_entries_the_log_committed_before_its_engine_saw_them_is_valid_not_beyond_the_head()
    {
        // A node's engine learns its head a moment after each commit, and a pull can serve the new entries in between;
        // the puller's next request then names a position beyond the engine's head but inside the log. Here the entries
        // go straight into node 1's log (a batch received from node 3), so its engine stays behind them for the test.
        var a = await _cluster.StartAsync(1, sync: o => o.PollInterval = TimeSpan.FromMinutes(30));
        var b = await _cluster.StartAsync(2);
        var log = await a.Writer.GetLogAsync();
        var engineHead = a.Writer.Head;
        var version = new HlcTimestamp(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0, 3);
        ReplicatedState[] states = [new(1, EntityChange.Upsert(Note("late-1", "one"), version), VersionVector.Of(version)), new(2, EntityChange.Upsert(Note("late-2", "two"), version), VersionVector.Of(version))];
        await log.ApplyReplicatedAsync(states, 3, (incoming, _) => new ReplicationDecision(ReplicationAction.Write, incoming.Change, incoming.History, 3, null), null, CancellationToken.None);
        var logHead = await a.HeadAsync();
        Assert.True(logHead > engineHead && a.Writer.Head == engineHead, $"log head {logHead}, engine head {a.Writer.Head}");

        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        Assert.NotNull(await b.StateAsync("late-2"));
        Assert.Equal(logHead, b.StatusOf(1).Cursor);

        // Asked again (and pulled by b's loop meanwhile), the cursor stands: no reset to the engine's stale head, so no
        // Merkle comparison on either node and nothing pulled twice.
        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        var status = b.StatusOf(1);
        Assert.Equal(logHead, status.Cursor);
        Assert.Equal(2, status.StatesReceived);
        Assert.Null(status.LastErrorCode);
    }

    [Fact]
    public async Task A_write_on_one_node_reaches_every_store_of_the_others_and_is_not_echoed()
    {
        var a = await _cluster.StartAsync(1);
        var b = await _cluster.StartAsync(2);
        var c = await _cluster.StartAsync(3);

        var ticket = await a.Manager.WriteBatchAsync([Note("x", "hello"), Note("y", "world")]);
        Assert.True(await a.Peering.WaitForReplicationAsync(ticket, null, TestCluster.Wait));

        foreach (var node in new[] { b, c })
        {
            var state = await node.StateAsync("x");
            Assert.NotNull(state);
            Assert.Equal(ticket.Version.NodeId, state.Change.Version.NodeId);
            Assert.Equal(1, state.ReceivedFrom is 1 or 2 or 3 ? 1 : 0);
        }

        // b's replicas: its own dispatchers apply what it received.
        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        var bHead = await b.HeadAsync();
        Assert.Equal(SyncWaitOutcome.Synced, await b.Manager.WaitForSyncAsync(new SyncTicket(new Log.LsnRange(1, bHead), default), TestCluster.Wait));
        var vectors = b.Services.GetRequiredService<SqliteVectorStore>();
        Assert.Equal(2, await vectors.CountAsync("notes", CancellationToken.None));
        var graph = b.Services.GetRequiredService<SqliteGraphStore>();
        Assert.Single(await graph.GetNeighborsAsync(new EntityKey("notes", "x"), "LINKS", EdgeDirection.Outgoing, CancellationToken.None));

        // No echo, no ping-pong: after everyone synced with everyone, each log holds the 2 states once.
        foreach (var (node, peers) in new[] { (a, new[] { 2, 3 }), (b, new[] { 1, 3 }), (c, new[] { 1, 2 }) })
        {
            foreach (var peer in peers)
            {
                await node.Peering.SyncNowAsync(peer);
            }
        }

        Assert.Equal(2, await a.HeadAsync());
        Assert.Equal(2, await b.HeadAsync());
        Assert.Equal(2, await c.HeadAsync());
    }

    [Fact]
    public async Task Concurrent_edits_on_two_nodes_are_a_recorded_conflict_and_every_node_keeps_the_last_writer()
    {
        // Each node writes while the other is down: neither has seen the other's edit.
        var a = await _cluster.StartAsync(1);
        var first = await a.Manager.WriteAsync(Note("x", "edited on a"));
        await a.StopAsync();
        var b = await _cluster.StartAsync(2);
        var second = await b.Manager.WriteAsync(Note("x", "edited on b"));
        await b.StopAsync();

        a = await _cluster.StartAsync(1);
        b = await _cluster.StartAsync(2);
        await a.Peering.SyncNowAsync(2);
        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);

        var winner = first.Version > second.Version ? first.Version : second.Version;
        var loser = first.Version > second.Version ? second.Version : first.Version;
        var atA = await a.StateAsync("x");
        var atB = await b.StateAsync("x");
        Assert.Equal(winner, atA!.Change.Version);
        Assert.Equal(winner, atB!.Change.Version);
        Assert.Equal(atA.Change.ContentHash, atB.Change.ContentHash);

        var conflicts = (await a.Peering.GetConflictsAsync("notes", "x")).Concat(await b.Peering.GetConflictsAsync("notes", "x")).ToList();
        Assert.NotEmpty(conflicts);
        Assert.All(conflicts, c => Assert.Equal(loser, c.Loser.Version));
        Assert.All(conflicts, c => Assert.Equal(winner, c.Winner));
        Assert.Contains(conflicts, c => c.Loser.Entity is { } e && System.Text.Encoding.UTF8.GetString(e.Document.Span).Contains("edited on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_restarted_node_resumes_from_its_saved_cursor()
    {
        var a = await _cluster.StartAsync(1);
        var b = await _cluster.StartAsync(2);
        var ticket = await a.Manager.WriteAsync(Note("x", "one"));
        Assert.True(await a.Peering.WaitForReplicationAsync(ticket, [2], TestCluster.Wait));
        await b.StopAsync();
        for (var i = 0; i < 20; i++)
        {
            ticket = await a.Manager.WriteAsync(Note("k" + i, "while b was down"));
        }

        b = await _cluster.StartAsync(2);
        Assert.True(await a.Peering.WaitForReplicationAsync(ticket, [2], TestCluster.Wait));
        Assert.Equal(21, await b.HeadAsync());
        Assert.NotNull(await b.StateAsync("k19"));
        var status = b.StatusOf(1);
        Assert.Equal(21, status.Cursor);
        Assert.Null(status.LastError);
    }
}
