using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>The replication contract of the SQLite log: two nodes exchanging states by hand, without a network.</summary>
public sealed class SqliteReplicationTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _a = new();
    private readonly TempDirectory _b = new();

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    private static Task<TestEngine> StartNode(TempDirectory dir, int nodeId) =>
        TestEngine.StartAsync(b => b.UseSqlite(o => o.DirectoryPath = dir.Path), o => o.NodeId = nodeId);

    private static SyncEntity Item(string id, string text) => SyncEntity.FromJson(
        new EntityKey("items", id),
        $$"""{"text":"{{text}}"}""",
        new float[] { 1, 2, 3, text.Length },
        [new SyncEdge("NEXT", new EntityKey("items", "root"))]);

    /// <summary>Pulls everything <paramref name="from"/>'s log holds after <paramref name="after"/> into <paramref name="to"/>.</summary>
    private static async Task<(ReplicationWriteResult Result, long Through)> PullAsync(TestEngine from, TestEngine to, long after = 0)
    {
        var fromWriter = from.Services.GetRequiredService<IReplicationWriter>();
        var toWriter = to.Services.GetRequiredService<IReplicationWriter>();
        var log = await fromWriter.GetLogAsync();
        var states = new List<ReplicatedState>();
        var read = await log.ReadReplicationAsync(after, 1000, toWriter.NodeId, _ => true, states, CancellationToken.None);
        var result = await toWriter.ApplyAsync(new ReplicationBatch(fromWriter.NodeId, states) { Cursor = new LogCheckpoint("peer/test", read.ReadThrough.ToString(System.Globalization.CultureInfo.InvariantCulture)) });
        return (result, read.ReadThrough);
    }

    [Fact]
    public async Task States_from_another_node_reach_every_store_once_and_are_never_served_back()
    {
        await using var a = await StartNode(_a, 1);
        await using var b = await StartNode(_b, 2);
        await a.Manager.WriteBatchAsync([Item("x", "one"), Item("y", "two")]);
        await a.Manager.DeleteAsync(new EntityKey("items", "y"));

        var (result, _) = await PullAsync(a, b);
        Assert.Equal(2, result.Written);
        Assert.Empty(result.Conflicts);
        Assert.Equal(SyncWaitOutcome.Synced, await b.Manager.WaitForSyncAsync(result.Ticket!.Value, Wait));

        var x = await b.Services.GetRequiredService<SqliteChangeLog>().Documents.ReadAsync(new EntityKey("items", "x"), CancellationToken.None);
        Assert.Equal("""{"text":"one"}""", System.Text.Encoding.UTF8.GetString(x!.Entity.Document.Span));
        Assert.Null(await b.Services.GetRequiredService<SqliteChangeLog>().Documents.ReadAsync(new EntityKey("items", "y"), CancellationToken.None));
        var vectors = b.Services.GetRequiredService<SqliteVectorStore>();
        Assert.Equal(1, await vectors.CountAsync("items", CancellationToken.None));
        var graph = b.Services.GetRequiredService<SqliteGraphStore>();
        Assert.Single(await graph.GetNeighborsAsync(new EntityKey("items", "x"), "NEXT", EdgeDirection.Outgoing, CancellationToken.None));

        // Nothing B received goes back to A, and pulling the same states again appends nothing.
        var bLog = await b.Services.GetRequiredService<IReplicationWriter>().GetLogAsync();
        var echoed = new List<ReplicatedState>();
        await bLog.ReadReplicationAsync(0, 1000, 1, _ => true, echoed, CancellationToken.None);
        Assert.Empty(echoed);
        var head = await bLog.GetLastLsnAsync(CancellationToken.None);
        var (again, through) = await PullAsync(a, b);
        Assert.Equal((0, 2), (again.Written, again.Ignored));
        Assert.Equal(head, await bLog.GetLastLsnAsync(CancellationToken.None));
        Assert.Equal(3, through);
        Assert.Equal("3", await bLog.GetCheckpointAsync("peer/test", CancellationToken.None));
    }

    [Fact]
    public async Task A_write_made_after_receiving_a_state_supersedes_it_without_a_conflict()
    {
        await using var a = await StartNode(_a, 1);
        await using var b = await StartNode(_b, 2);
        await a.Manager.WriteAsync(Item("x", "from a"));
        await PullAsync(a, b);
        await b.Manager.WriteAsync(Item("x", "b edited it"));

        var (result, _) = await PullAsync(b, a);
        Assert.Equal(1, result.Written);
        Assert.Empty(result.Conflicts);
        var stored = await (await a.Services.GetRequiredService<IReplicationWriter>().GetLogAsync()).ReadStatesAsync([new EntityKey("items", "x")], CancellationToken.None);
        Assert.Equal(2, stored[0].Change.Version.NodeId);
        Assert.Equal(2, stored[0].ReceivedFrom);
        Assert.Equal(2, stored[0].History.Count);
    }

    [Fact]
    public async Task A_stored_state_that_loses_a_conflict_is_recorded_with_its_whole_content()
    {
        await using var a = await StartNode(_a, 1);
        await using var b = await StartNode(_b, 2);
        var first = await a.Manager.WriteAsync(Item("x", "a's"));
        var second = await b.Manager.WriteAsync(Item("x", "b's"));

        // The node holding the older write pulls the newer one: its own stored state loses, and the apply reads a
        // stored content only for a conflict, so this is the case that must read it whole.
        var (older, newer, olderText) = second.Version > first.Version ? (a, b, "a's") : (b, a, "b's");
        var (result, _) = await PullAsync(newer, older);

        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal(ConflictResolutionKind.TookRemote, conflict.Resolution);
        Assert.Equal($$"""{"text":"{{olderText}}"}""", System.Text.Encoding.UTF8.GetString(conflict.Loser.Entity!.Document.Span));
        var listed = await (await older.Services.GetRequiredService<IReplicationWriter>().GetLogAsync()).ListConflictsAsync("items", "x", 0, 10, CancellationToken.None);
        Assert.Equal($$"""{"text":"{{olderText}}"}""", System.Text.Encoding.UTF8.GetString(Assert.Single(listed).Loser.Entity!.Document.Span));
    }

    [Fact]
    public async Task Concurrent_writes_are_recorded_as_a_conflict_and_both_nodes_keep_the_last_writer()
    {
        await using var a = await StartNode(_a, 1);
        await using var b = await StartNode(_b, 2);
        var events = a.Manager.SubscribeAsync().GetAsyncEnumerator();
        var first = await a.Manager.WriteAsync(Item("x", "a's"));
        var second = await b.Manager.WriteAsync(Item("x", "b's"));
        var winnerNode = second.Version > first.Version ? 2 : 1;
        var loserVersion = second.Version > first.Version ? first.Version : second.Version;

        var (atB, _) = await PullAsync(a, b);
        var (atA, _) = await PullAsync(b, a);

        var aState = (await (await a.Services.GetRequiredService<IReplicationWriter>().GetLogAsync()).ReadStatesAsync([new EntityKey("items", "x")], CancellationToken.None))[0];
        var bState = (await (await b.Services.GetRequiredService<IReplicationWriter>().GetLogAsync()).ReadStatesAsync([new EntityKey("items", "x")], CancellationToken.None))[0];
        Assert.Equal(aState.Change.Version, bState.Change.Version);
        Assert.Equal(aState.Change.ContentHash, bState.Change.ContentHash);
        Assert.Equal(winnerNode, aState.Change.Version.NodeId);

        var recorded = atA.Conflicts.Concat(atB.Conflicts).ToList();
        Assert.NotEmpty(recorded);
        Assert.All(recorded, c => Assert.Equal(loserVersion, c.Loser.Version));
        var listed = await (await a.Services.GetRequiredService<IReplicationWriter>().GetLogAsync()).ListConflictsAsync("items", "x", 0, 10, CancellationToken.None);
        Assert.Equal(atA.Conflicts.Count, listed.Count);
        if (listed.Count > 0)
        {
            Assert.NotEqual(0, listed[0].Id);
            Assert.Equal(loserVersion, listed[0].Loser.Version);
            Assert.NotNull(listed[0].Loser.Entity);
        }

        if (atA.Conflicts.Count > 0)
        {
            using var timeout = new CancellationTokenSource(Wait);
            while (await events.MoveNextAsync().AsTask().WaitAsync(timeout.Token))
            {
                if (events.Current.Kind == SyncEventKind.ConflictDetected)
                {
                    Assert.Equal(new EntityKey("items", "x"), events.Current.Key);
                    break;
                }
            }
        }

        await events.DisposeAsync();
    }

    [Fact]
    public async Task Invalid_states_are_refused_with_the_reason_and_nothing_moves()
    {
        await using var a = await StartNode(_a, 1);
        await using var b = await StartNode(_b, 2);
        var writer = b.Services.GetRequiredService<IReplicationWriter>();
        var log = await writer.GetLogAsync();
        var cursor = new LogCheckpoint("peer/test", "5");
        var version = new HlcTimestamp(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0, 1);
        var good = EntityChange.Upsert(Item("x", "fine"), version);
        var wrongHash = EntityChange.Upsert(Item("x", "fine"), version, UInt128.One);
        var future = EntityChange.Upsert(Item("x", "fine"), new HlcTimestamp(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds(), 0, 1));
        var other = EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("secret", "s"), "{}"), version);

        var hash = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Of(version)), new ReplicatedState(2, wrongHash, VersionVector.Of(version))]) { Cursor = cursor }).AsTask());
        Assert.Equal((ReplicationRejectReason.Hash, 1), (hash.Reason, hash.Index));
        var ahead = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, future, VersionVector.Of(future.Version))]) { Cursor = cursor }).AsTask());
        Assert.Equal(ReplicationRejectReason.ClockAhead, ahead.Reason);
        Assert.Contains("ahead of this node's clock", ahead.Message, StringComparison.Ordinal);
        var collection = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, other, VersionVector.Of(version))]) { Cursor = cursor }).AsTask());
        Assert.Equal(ReplicationRejectReason.Collection, collection.Reason);
        var notAllowed = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Of(version))]) { Cursor = cursor, AllowCollection = _ => false }).AsTask());
        Assert.Equal(ReplicationRejectReason.Collection, notAllowed.Reason);
        var history = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Empty)]) { Cursor = cursor }).AsTask());
        Assert.Equal(ReplicationRejectReason.History, history.Reason);

        Assert.Null(await log.GetCheckpointAsync("peer/test", CancellationToken.None));
        Assert.Equal(0, await log.GetLastLsnAsync(CancellationToken.None));
        Assert.Null(await log.Documents().ReadAsync(new EntityKey("items", "x"), CancellationToken.None));
    }

    [Fact]
    public async Task A_local_write_older_than_a_received_state_is_restamped_on_top_of_it()
    {
        await using var b = await StartNode(_b, 2);
        var writer = b.Services.GetRequiredService<IReplicationWriter>();
        var log = await writer.GetLogAsync();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var stale = EntityChange.Upsert(Item("x", "local"), new HlcTimestamp(now - 5_000, 0, 2));
        var received = EntityChange.Upsert(Item("x", "remote"), new HlcTimestamp(now, 0, 1));
        await writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, received, VersionVector.Of(received.Version))]));

        // The local write took its version before the received state was observed: the guard would drop it.
        var restampedVersion = new HlcTimestamp(now + 1, 0, 2);
        var changes = new[] { stale };
        await log.AppendAndApplyAsync(changes, null, c => EntityChange.Upsert(c.Entity!, restampedVersion, c.ContentHash), CancellationToken.None);

        Assert.Equal(restampedVersion, changes[0].Version);
        var stored = (await log.ReadStatesAsync([new EntityKey("items", "x")], CancellationToken.None))[0];
        Assert.Equal(restampedVersion, stored.Change.Version);
        Assert.Equal(stale.ContentHash, stored.Change.ContentHash);
        Assert.True(stored.History.Covers(received.Version), $"history {stored.History} must cover the received {received.Version}");
        Assert.Null(stored.ReceivedFrom);
        var last = await log.GetLastEntryForKeyAsync(new EntityKey("items", "x"), CancellationToken.None);
        Assert.Equal(restampedVersion, last!.Change.Version);
    }
}

internal static class ReplicationLogTestExtensions
{
    public static IDocumentStore Documents(this IReplicationLog log) => log.CoupledSource!;
}
