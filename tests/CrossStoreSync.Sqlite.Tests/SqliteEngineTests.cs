using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>The engine end to end on the embedded SQLite log and stores.</summary>
public sealed class SqliteEngineTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The coupled SQLite log + documents, and a SQLite vector store behind a fault plan.</summary>
    private void SourceAndFaultyVectors(CrossStoreSync.DependencyInjection.ICrossStoreSyncBuilder b, StoreFaults faults)
    {
        b.Services.AddSingleton(_ => new SqliteChangeLog(_dir.File("source.db")));
        b.Services.AddSingleton(_ => new SqliteVectorStore(_dir.File("vectors.db")));
        b.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
         .UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents)
         .AddReplica("v", sp => new FaultInjectingVectorStore(sp.GetRequiredService<SqliteVectorStore>(), faults));
    }

    private static SyncEntity Item(int i, string text = "hello") => SyncEntity.FromJson(
        new EntityKey("items", "item-" + i),
        $"{{\"i\":{i},\"text\":\"{text}\"}}",
        new float[] { i, 1, 0, -1 },
        [new SyncEdge("NEXT", new EntityKey("items", "item-" + (i + 1))), new SyncEdge("ROOT", new EntityKey("items", "root"))]);

    [Fact]
    public async Task Writes_and_deletes_reach_the_document_vector_and_graph_stores()
    {
        await using var engine = await TestEngine.StartAsync(b => b.UseSqlite(o => o.DirectoryPath = _dir.Path));
        var manager = engine.Manager;
        SyncTicket last = default;
        for (var start = 0; start < 2000; start += 250)
        {
            last = await manager.WriteBatchAsync(Enumerable.Range(start, 250).Select(i => Item(i)).ToArray());
        }

        var deleted = await manager.DeleteAsync(new EntityKey("items", "item-7"));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, Wait));
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(deleted, Wait));

        var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
        var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
        var graph = engine.Services.GetRequiredService<SqliteGraphStore>();
        foreach (var store in new ISyncStore[] { docs, vectors, graph })
        {
            Assert.Equal(1999, await store.CountAsync("items", CancellationToken.None));
        }

        var entity = Item(42);
        foreach (var store in new ISyncStore[] { docs, vectors, graph })
        {
            var digest = Assert.Single(await store.ReadDigestsAsync("items", ["item-42"], CancellationToken.None));
            Assert.Equal(EntityEncoding.ComputeContentHash(entity), digest.RecordedHash);
            Assert.Equal(ProjectionHash.Compute(entity, store.Kind), digest.ProjectionHash);
        }

        var neighbours = await graph.GetNeighborsAsync(new EntityKey("items", "root"), "ROOT", EdgeDirection.Incoming, CancellationToken.None);
        Assert.Equal(1999, neighbours.Count);
        var hits = await vectors.SearchAsync("items", new float[] { 42, 1, 0, -1 }, 1, CancellationToken.None);
        Assert.Equal("item-42", hits[0].Key.Id);

        var status = await manager.GetStatusAsync(new EntityKey("items", "item-7"));
        Assert.True(status.IsSynced);
        Assert.Equal(3, status.Stores.Count);
    }

    [Fact]
    public async Task Replica_that_was_down_catches_up_without_loss_and_in_order()
    {
        var faults = new StoreFaults();
        var versions = new System.Collections.Concurrent.ConcurrentDictionary<EntityKey, List<HlcTimestamp>>();
        faults.BeforeApply = changes =>
        {
            foreach (var c in changes)
            {
                var list = versions.GetOrAdd(c.Key, _ => []);
                lock (list)
                {
                    list.Add(c.Version);
                }
            }

            return ValueTask.CompletedTask;
        };

        await using var engine = await TestEngine.StartAsync(b => SourceAndFaultyVectors(b, faults));
        var manager = engine.Manager;

        faults.GoDown();
        SyncTicket last = default;
        for (var round = 0; round < 5; round++)
        {
            last = await manager.WriteBatchAsync(Enumerable.Range(0, 300).Select(i => Item(i, "round" + round)).ToArray());
        }

        Assert.Equal(SyncWaitOutcome.TimedOut, await manager.WaitForSyncAsync(last, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(StoreSyncState.Pending, (await manager.GetStatusAsync(new EntityKey("items", "item-3"))).Stores[1].State);
        Assert.True(faults.InjectedFailures > 0);

        faults.ComeBack();
        Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(last, Wait));

        var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
        var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
        Assert.Equal(300, await vectors.CountAsync("items", CancellationToken.None));
        for (var i = 0; i < 300; i += 37)
        {
            var source = (await docs.ReadAsync(Item(i).Key, CancellationToken.None))!;
            Assert.Contains("round4", source.Entity.DocumentText, StringComparison.Ordinal);
            var digest = Assert.Single(await vectors.ReadDigestsAsync("items", [Item(i).Key.Id], CancellationToken.None));
            Assert.Equal(source.Version, digest.Version);
        }

        foreach (var (key, applied) in versions)
        {
            lock (applied)
            {
                for (var j = 1; j < applied.Count; j++)
                {
                    Assert.True(applied[j] >= applied[j - 1], $"{key}: version {applied[j]} applied after {applied[j - 1]}.");
                }
            }
        }
    }

    [Fact]
    public async Task A_change_a_replica_rejects_is_dead_lettered_durably_and_replayed_after_the_fix()
    {
        var faults = new StoreFaults();
        var poison = new EntityKey("items", "item-13");
        faults.RejectKey(poison, "payload too large for this index");
        void Stores(CrossStoreSync.DependencyInjection.ICrossStoreSyncBuilder b) => SourceAndFaultyVectors(b, faults);

        SyncTicket ticket;
        await using (var engine = await TestEngine.StartAsync(Stores))
        {
            ticket = await engine.Manager.WriteBatchAsync(Enumerable.Range(10, 10).Select(i => Item(i)).ToArray());
            Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(ticket, Wait));
            Assert.Equal(9, await engine.Services.GetRequiredService<SqliteVectorStore>().CountAsync("items", CancellationToken.None));
        }

        // The dead letter survives a restart; after the store is fixed, replay brings the source's state.
        faults.AcceptKey(poison);
        await using (var engine = await TestEngine.StartAsync(Stores))
        {
            var letter = Assert.Single(await engine.Manager.GetDeadLettersAsync());
            Assert.Equal(("vectors", poison), (letter.Store, letter.Key));
            Assert.Contains("payload too large for this index", letter.Reason, StringComparison.Ordinal);
            var status = await engine.Manager.GetStatusAsync(poison);
            Assert.Equal(StoreSyncState.DeadLettered, status.Stores.Single(s => s.Store == "vectors").State);

            Assert.Equal(1, await engine.Manager.ReplayDeadLettersAsync());
            var replay = await engine.Manager.WriteAsync(Item(99));
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(replay, Wait));
            Assert.Empty(await engine.Manager.GetDeadLettersAsync());
            var source = (await engine.Services.GetRequiredService<SqliteChangeLog>().Documents.ReadAsync(poison, CancellationToken.None))!;
            var digest = Assert.Single(await engine.Services.GetRequiredService<SqliteVectorStore>().ReadDigestsAsync("items", [poison.Id], CancellationToken.None));
            Assert.Equal(source.Version, digest.Version);
            Assert.True((await engine.Manager.GetStatusAsync(poison)).IsSynced);
        }
    }

    [Fact]
    public async Task A_write_the_source_rejects_reaches_no_replica_and_others_keep_flowing()
    {
        await using var engine = await TestEngine.StartAsync(b => b.UseSqlite(o => o.DirectoryPath = _dir.Path));
        var log = engine.Services.GetRequiredService<SqliteChangeLog>();
        await using (var connection = new SqliteConnection($"Data Source={log.DatabasePath}"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TRIGGER reject_poison BEFORE INSERT ON documents WHEN NEW.id = 'item-666' BEGIN SELECT RAISE(ABORT, 'constraint: poison'); END;";
            await command.ExecuteNonQueryAsync();
        }

        var error = await Assert.ThrowsAsync<Errors.SyncWriteRejectedException>(async () => await engine.Manager.WriteAsync(Item(666)));
        Assert.Contains("item-666", error.Message, StringComparison.Ordinal);
        Assert.Contains("constraint: poison", error.Message, StringComparison.Ordinal);

        var ok = await engine.Manager.WriteAsync(Item(1));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ok, Wait));
        Assert.Empty(await engine.Services.GetRequiredService<SqliteVectorStore>().ReadDigestsAsync("items", ["item-666"], CancellationToken.None));
        Assert.Empty(await engine.Services.GetRequiredService<SqliteGraphStore>().ReadDigestsAsync("items", ["item-666"], CancellationToken.None));
        Assert.Null(await log.GetLastEntryForKeyAsync(new EntityKey("items", "item-666"), CancellationToken.None));
    }

    [Fact]
    public async Task A_corrupted_log_record_stops_the_replica_there_after_a_restart_and_is_reported()
    {
        var faults = new StoreFaults();
        void Stores(CrossStoreSync.DependencyInjection.ICrossStoreSyncBuilder b) => SourceAndFaultyVectors(b, faults);

        SyncTicket first, second, third;
        await using (var engine = await TestEngine.StartAsync(Stores))
        {
            first = await engine.Manager.WriteAsync(Item(1));
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(first, Wait));
            faults.GoDown();
            second = await engine.Manager.WriteAsync(Item(2));
            third = await engine.Manager.WriteAsync(Item(3));
        }

        // Damage the record on disk while the process is down, as a bad disk or a stray edit would.
        await using (var connection = new SqliteConnection($"Data Source={_dir.File("source.db")}"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = $"UPDATE log_entries SET version = version + 1 WHERE lsn = {second.Lsns.First}";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        SqliteConnection.ClearAllPools();
        faults.ComeBack();
        await using (var engine = await TestEngine.StartAsync(Stores))
        {
            var events = engine.Manager.SubscribeAsync();
            await foreach (var e in events.WithCancellation(new CancellationTokenSource(Wait).Token))
            {
                if (e.Kind == SyncEventKind.Faulted)
                {
                    Assert.Equal(second.Lsns.First, e.FirstLsn);
                    Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
                    break;
                }
            }

            Assert.Equal(SyncWaitOutcome.TimedOut, await engine.Manager.WaitForSyncAsync(third, TimeSpan.FromMilliseconds(300)));
            var replica = Assert.Single(await engine.Manager.GetStatisticsAsync(), s => !s.IsSource);
            Assert.True(replica.Faulted);
            Assert.Equal(first.Lsns.Last, replica.Cursor);
            Assert.Empty(await engine.Services.GetRequiredService<SqliteVectorStore>().ReadDigestsAsync("items", ["item-3"], CancellationToken.None));
        }
    }
}
