using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Replication;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.Replication;

/// <summary>The replication contract of the PostgreSQL log: two nodes on two databases exchanging states by hand.</summary>
public sealed class PostgresReplicationTests : TwoNodes
{
    [Fact]
    public async Task States_from_another_node_reach_every_store_once_and_are_never_served_back()
    {
        await using var a = await StartNode(1);
        await using var b = await StartNode(2);
        await a.Manager.WriteBatchAsync([Item("x", "one"), Item("y", "two")]);
        await a.Manager.DeleteAsync(new EntityKey("items", "y"));

        // Three entries, two keys: each key travels once, as the state the source holds now (y as its tombstone).
        var aLog = await LogOf(a);
        var served = new List<ReplicatedState>();
        var read = await aLog.ReadReplicationAsync(0, 1000, 2, _ => true, served, CancellationToken.None);
        Assert.Equal((3L, 3L), (read.ReadThrough, read.Head));
        Assert.Equal([("x", 1L), ("y", 3L)], served.Select(s => (s.Change.Key.Id, s.Lsn)));
        Assert.Equal(ChangeKind.Delete, served[1].Change.Kind);
        Assert.Equal(read.Fingerprint, (long)(await DatabaseA.ScalarAsync("SELECT checksum FROM crossstoresync.log_entries WHERE lsn = 3"))!);
        Assert.Equal(read.Fingerprint, await aLog.GetFingerprintAsync(3, CancellationToken.None));
        Assert.Null(await aLog.GetFingerprintAsync(4, CancellationToken.None));

        var (result, _) = await PullAsync(a, b);
        Assert.Equal(2, result.Written);
        Assert.Empty(result.Conflicts);
        Assert.Equal(SyncWaitOutcome.Synced, await b.Manager.WaitForSyncAsync(result.Ticket!.Value, Wait));

        var documents = b.Services.GetRequiredService<PostgresDocumentStore>();
        var x = await documents.ReadAsync(new EntityKey("items", "x"), CancellationToken.None);
        Assert.Equal("""{"text":"one"}""", Encoding.UTF8.GetString(x!.Entity.Document.Span));
        Assert.Null(await documents.ReadAsync(new EntityKey("items", "y"), CancellationToken.None));
        Assert.Equal(1, await b.Services.GetRequiredService<SqliteVectorStore>().CountAsync("items", CancellationToken.None));
        Assert.Single(await b.Services.GetRequiredService<SqliteGraphStore>().GetNeighborsAsync(new EntityKey("items", "x"), "NEXT", EdgeDirection.Outgoing, CancellationToken.None));
        Assert.Equal(1, await DatabaseB.ScalarAsync("SELECT from_node FROM crossstoresync.doc_items WHERE id = 'x'"));

        // The digests for Merkle repair hold the tombstone too, equal on both nodes.
        var bLog = await LogOf(b);
        var digests = await bLog.ScanStateDigestsAsync("items", BucketRange.All, null, 10, CancellationToken.None);
        Assert.Equal(digests, await aLog.ScanStateDigestsAsync("items", BucketRange.All, null, 10, CancellationToken.None));
        Assert.Equal(2, digests.Count);
        Assert.True(digests.Single(d => d.Id == "y").Deleted);
        Assert.Equal(digests.Skip(1), await bLog.ScanStateDigestsAsync("items", BucketRange.All, digests[0].Id, 10, CancellationToken.None));

        // Nothing B received goes back to A, and pulling the same states again appends nothing.
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
        await using var a = await StartNode(1);
        await using var b = await StartNode(2);
        await a.Manager.WriteAsync(Item("x", "from a"));
        await PullAsync(a, b);
        await b.Manager.WriteAsync(Item("x", "b edited it"));

        // B's local write folded the received version into the stored history and cleared the sender.
        Assert.Equal(DBNull.Value, await DatabaseB.ScalarAsync("SELECT from_node FROM crossstoresync.doc_items WHERE id = 'x'"));
        var history = VersionVector.ParseJson((string)(await DatabaseB.ScalarAsync("SELECT vv::text FROM crossstoresync.doc_items WHERE id = 'x'"))!);
        Assert.Equal(1, history.Count);
        Assert.Equal(1, new HlcTimestamp(history.Entries[0]).NodeId);

        var (result, _) = await PullAsync(b, a);
        Assert.Equal(1, result.Written);
        Assert.Empty(result.Conflicts);
        var stored = await StateOf(a, "x");
        Assert.Equal(2, stored.Change.Version.NodeId);
        Assert.Equal(2, stored.ReceivedFrom);
        Assert.Equal(2, stored.History.Count);
        Assert.Equal("""{"text":"b edited it"}""", Encoding.UTF8.GetString(stored.Change.Entity!.Document.Span));
    }

    [Fact]
    public async Task A_stored_state_that_loses_a_conflict_is_recorded_with_its_whole_content()
    {
        await using var a = await StartNode(1);
        await using var b = await StartNode(2);
        var first = await a.Manager.WriteAsync(Item("x", "a's"));
        var second = await b.Manager.WriteAsync(Item("x", "b's"));

        // The node holding the older write pulls the newer one: its own stored state loses. The apply reads stored
        // content only for a conflict, so this is the case that must read it whole.
        var (older, newer, olderText) = second.Version > first.Version ? (a, b, "a's") : (b, a, "b's");
        var (result, _) = await PullAsync(newer, older);

        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal(ConflictResolutionKind.TookRemote, conflict.Resolution);
        Assert.Equal($$"""{"text":"{{olderText}}"}""", Encoding.UTF8.GetString(conflict.Loser.Entity!.Document.Span));
        var listed = Assert.Single(await (await LogOf(older)).ListConflictsAsync("items", "x", 0, 10, CancellationToken.None));
        Assert.Equal($$"""{"text":"{{olderText}}"}""", Encoding.UTF8.GetString(listed.Loser.Entity!.Document.Span));
        Assert.Equal(conflict.Loser.ContentHash, listed.Loser.ContentHash);
    }

    [Fact]
    public async Task Concurrent_writes_are_recorded_as_a_conflict_and_both_nodes_keep_the_last_writer()
    {
        await using var a = await StartNode(1);
        await using var b = await StartNode(2);
        var first = await a.Manager.WriteAsync(Item("x", "a's"));
        var second = await b.Manager.WriteAsync(Item("x", "b's"));
        var winnerNode = second.Version > first.Version ? 2 : 1;
        var loserVersion = second.Version > first.Version ? first.Version : second.Version;

        var (atB, _) = await PullAsync(a, b);
        var (atA, _) = await PullAsync(b, a);

        var aState = await StateOf(a, "x");
        var bState = await StateOf(b, "x");
        Assert.Equal(aState.Change.Version, bState.Change.Version);
        Assert.Equal(aState.Change.ContentHash, bState.Change.ContentHash);
        Assert.Equal(winnerNode, aState.Change.Version.NodeId);
        Assert.True(bState.History.Covers(first.Version) && bState.History.Covers(second.Version), $"history {bState.History}");

        // B pulled first and detected it; what A then pulled from B had seen both (B's history merged A's), so A
        // takes it without a second record. The loser is on record whole.
        Assert.Empty(atA.Conflicts);
        var detected = Assert.Single(atB.Conflicts);
        Assert.Equal(winnerNode == 1 ? ConflictResolutionKind.TookRemote : ConflictResolutionKind.KeptLocal, detected.Resolution);
        var bLog = await LogOf(b);
        var conflict = Assert.Single(await bLog.ListConflictsAsync("items", "x", 0, 10, CancellationToken.None));
        Assert.Equal((1L, detected.Id), (conflict.Id, detected.Id));
        Assert.Equal(1, conflict.PeerNodeId);
        Assert.Equal(loserVersion, conflict.Loser.Version);
        Assert.Equal(aState.Change.Version, conflict.Winner);
        Assert.Equal(detected.DetectedAt.ToUnixTimeMilliseconds(), conflict.DetectedAt.ToUnixTimeMilliseconds());
        Assert.Equal(winnerNode == 1 ? """{"text":"b's"}""" : """{"text":"a's"}""", Encoding.UTF8.GetString(conflict.Loser.Entity!.Document.Span));
        Assert.Empty(await bLog.ListConflictsAsync("items", "x", conflict.Id, 10, CancellationToken.None));
        Assert.Empty(await bLog.ListConflictsAsync("other", null, 0, 10, CancellationToken.None));
        Assert.Single(await bLog.ListConflictsAsync(null, null, 0, 10, CancellationToken.None));
        Assert.Empty(await (await LogOf(a)).ListConflictsAsync(null, null, 0, 10, CancellationToken.None));

        await b.WaitForEventAsync(e => e.Kind == SyncEventKind.ConflictDetected && e.Key == new EntityKey("items", "x"), Wait);
    }

    [Fact]
    public async Task Invalid_states_are_refused_with_the_reason_and_nothing_moves()
    {
        await using var b = await StartNode(2);
        var writer = WriterOf(b);
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
        var collection = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, other, VersionVector.Of(version))]) { Cursor = cursor }).AsTask());
        Assert.Equal(ReplicationRejectReason.Collection, collection.Reason);
        var notAllowed = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Of(version))]) { Cursor = cursor, AllowCollection = _ => false }).AsTask());
        Assert.Equal(ReplicationRejectReason.Collection, notAllowed.Reason);
        var history = await Assert.ThrowsAsync<ReplicationRejectedException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Empty)]) { Cursor = cursor }).AsTask());
        Assert.Equal(ReplicationRejectReason.History, history.Reason);

        // A state the store itself refuses (jsonb cannot hold U+0000) rolls the whole batch back, cursor included.
        var nul = EntityChange.Upsert(new SyncEntity(new EntityKey("items", "nul"), Encoding.UTF8.GetBytes("{\"a\":\"\\u0000\"}"), new float[] { 1, 2, 3, 4 }), version);
        await Assert.ThrowsAsync<SyncStoreException>(() => writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, good, VersionVector.Of(version)), new ReplicatedState(2, nul, VersionVector.Of(version))]) { Cursor = cursor }).AsTask());

        Assert.Null(await log.GetCheckpointAsync("peer/test", CancellationToken.None));
        Assert.Equal(0, await log.GetLastLsnAsync(CancellationToken.None));
        Assert.Empty(await log.ReadStatesAsync([new EntityKey("items", "x"), new EntityKey("items", "nul")], CancellationToken.None));
        Assert.Null(await b.Services.GetRequiredService<PostgresDocumentStore>().ReadAsync(new EntityKey("items", "x"), CancellationToken.None));
    }

    [Fact]
    public async Task A_local_write_older_than_a_received_state_is_restamped_on_top_of_it()
    {
        await using var b = await StartNode(2);
        var writer = WriterOf(b);
        var log = await writer.GetLogAsync();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var stale = EntityChange.Upsert(Item("x", "local"), new HlcTimestamp(now - 5_000, 0, 2));
        var untouched = EntityChange.Upsert(Item("z", "local too"), new HlcTimestamp(now - 5_000, 1, 2));
        var received = EntityChange.Upsert(Item("x", "remote"), new HlcTimestamp(now, 0, 1));
        await writer.ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, received, VersionVector.Of(received.Version))]));

        // The local write took its version before the received state was observed: the guard would drop it.
        var restampedVersion = new HlcTimestamp(now + 1, 0, 2);
        var changes = new[] { stale, untouched };
        var range = await log.AppendAndApplyAsync(changes, new LogCheckpoint("feed/test", "7"), c => EntityChange.Upsert(c.Entity!, restampedVersion, c.ContentHash), CancellationToken.None);

        Assert.Equal(restampedVersion, changes[0].Version);
        Assert.Same(untouched, changes[1]);
        var stored = await StateOf(b, "x");
        Assert.Equal(restampedVersion, stored.Change.Version);
        Assert.Equal(stale.ContentHash, stored.Change.ContentHash);
        Assert.True(stored.History.Covers(received.Version), $"history {stored.History} must cover the received {received.Version}");
        Assert.Null(stored.ReceivedFrom);
        Assert.Equal(untouched.Version, (await StateOf(b, "z")).Change.Version);

        // The log holds the versions the source holds, checksums included (a read verifies them).
        Assert.Equal(new LsnRange(2, 3), range);
        var last = await log.GetLastEntryForKeyAsync(new EntityKey("items", "x"), CancellationToken.None);
        Assert.Equal(restampedVersion, last!.Change.Version);
        var entries = new List<LogRecord>();
        await log.ReadCommittedAsync(0, 10, entries, CancellationToken.None);
        Assert.Equal(3, entries.Count);
        Assert.Equal("7", await log.GetCheckpointAsync("feed/test", CancellationToken.None));
    }

    [Fact]
    public async Task A_table_created_before_replication_gets_the_history_columns_at_start()
    {
        await using (var first = await StartNode(2))
        {
            await first.Manager.WriteAsync(Item("old", "before the upgrade"));
        }

        await DatabaseB.ExecuteAsync("ALTER TABLE crossstoresync.doc_items DROP COLUMN vv, DROP COLUMN from_node");

        await using var b = await StartNode(2);
        Assert.Equal(2L, await DatabaseB.ScalarAsync("SELECT count(*) FROM information_schema.columns WHERE table_name = 'doc_items' AND column_name IN ('vv', 'from_node')"));
        var old = await StateOf(b, "old");
        Assert.Equal(VersionVector.Of(old.Change.Version), old.History);
        Assert.Null(old.ReceivedFrom);

        // A node that only overwrites its own states keeps no history; a received state then has something to compare.
        await b.Manager.WriteAsync(Item("old", "after"));
        Assert.Equal(DBNull.Value, await DatabaseB.ScalarAsync("SELECT vv FROM crossstoresync.doc_items WHERE id = 'old'"));
    }
}
