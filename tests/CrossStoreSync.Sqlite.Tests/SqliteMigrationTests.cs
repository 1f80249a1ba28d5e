using System.Collections.Concurrent;
using System.Globalization;
using CrossStoreSync.Consistency;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>Backfills between real SQLite files: volume, concurrent writes, a SIGKILL mid-migration, rollback.</summary>
public sealed class SqliteMigrationTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static SyncEntity Item(int i, int dimension, int revision = 1) => SyncEntity.FromJson(
        new EntityKey("items", "item-" + i.ToString(CultureInfo.InvariantCulture)),
        $"{{\"i\":{i},\"rev\":{revision},\"text\":\"some text to embed\"}}",
        Enumerable.Range(0, dimension).Select(d => (float)((i + d + revision) % 11)).ToArray(),
        [new SyncEdge("NEXT", new EntityKey("items", "item-" + (i + 1))), new SyncEdge("ROOT", new EntityKey("items", "root"))]);

    /// <summary>Writes entities through the coupled SQLite log, as an application did before the replicas existed.</summary>
    private async Task SeedAsync(int count, int dimension)
    {
        await using var log = new SqliteChangeLog(_dir.File("source.db"));
        await log.InitializeAsync(CancellationToken.None);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        for (var start = 0; start < count; start += 5_000)
        {
            var batch = Enumerable.Range(start, Math.Min(5_000, count - start)).Select(i => EntityChange.Upsert(Item(i, dimension), new HlcTimestamp(now, i % 4096, 1))).ToArray();
            await log.AppendAndApplyAsync(batch, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Backfill_of_200000_entities_into_new_vector_and_graph_stores_with_concurrent_writes_finds_zero_differences()
    {
        const int Count = 200_000;
        await SeedAsync(Count, 4);
        await using var engine = await TestEngine.StartAsync(
            b => b.UseSqlite(o => o.DirectoryPath = _dir.Path),
            o =>
            {
                o.ReplicasAwaitingBackfill.Add("vectors");
                o.ReplicasAwaitingBackfill.Add("graph");
            });
        var migrations = engine.Services.GetRequiredService<IMigrationManager>();

        // Every 10th batch report, on the worker's thread, writes race the scan: updates and deletes of seeded keys
        // behind and ahead of it, and inserts of new ones.
        var tickets = new ConcurrentBag<SyncTicket>();
        var random = new Random(11);
        var reports = 0;
        var writes = 0;
        var progress = new SynchronousProgress(p =>
        {
            if (p.Phase != MigrationPhase.Backfilling || Interlocked.Increment(ref reports) % 10 != 0)
            {
                return;
            }

            for (var i = 0; i < 5; i++)
            {
                int n, key;
                lock (random)
                {
                    n = ++writes;
                    key = random.Next(Count + 1_000);
                }

                tickets.Add(n % 4 == 0
                    ? engine.Manager.DeleteAsync(new EntityKey("items", "item-" + key.ToString(CultureInfo.InvariantCulture))).AsTask().GetAwaiter().GetResult()
                    : engine.Manager.WriteAsync(Item(key, 4, revision: 2 + n)).AsTask().GetAwaiter().GetResult());
            }
        });

        var reportsOut = await Task.WhenAll(
            migrations.RunAsync(new MigrationRequest { Id = "vectors-backfill", Target = "vectors", Workers = 2 }, progress),
            migrations.RunAsync(new MigrationRequest { Id = "graph-backfill", Target = "graph", Workers = 2 }, progress));

        Assert.True(writes >= 50, $"Only {writes} writes raced the backfills.");
        Assert.All(reportsOut, r => Assert.InRange(r.Written, Count - writes, Count + writes));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(tickets.MaxBy(t => t.Lsns.Last), Wait));
        var check = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items");
        foreach (var store in check.Stores)
        {
            Assert.True(store.Inconsistent == 0, $"{store.Store}: {store.Missing} missing, {store.Stale} stale, {store.Orphaned} orphaned, {store.Corrupted} corrupted.");
        }

        Assert.Equal(check.SourceEntities, check.Stores.Sum(s => s.Consistent) / 2);
    }

    [Fact]
    public async Task Migration_killed_with_SIGKILL_resumes_from_its_checkpoint_and_finishes_consistent()
    {
        const int Count = 30_000;
        await SeedAsync(Count, 8);
        var killAt = Random.Shared.Next(Count / 5, Count * 3 / 5);
        long announced = 0;
        using (var child = ChildProcess.Start("migrate", _dir.Path))
        {
            await child.ReadUntilAsync(
                l => l.StartsWith("APPLYING ", StringComparison.Ordinal) && (announced = long.Parse(l[9..], CultureInfo.InvariantCulture)) >= killAt,
                timeout: Wait);
            child.KillHard();
        }

        string report;
        using (var resumed = ChildProcess.Start("migrate", _dir.Path))
        {
            report = await resumed.ReadUntilAsync(l => l.StartsWith("REPORT ", StringComparison.Ordinal), timeout: Wait);
            Assert.Equal(0, await resumed.WaitForExitAsync(Wait));
        }

        var parts = report.Split(' ');
        var written = long.Parse(parts[1], CultureInfo.InvariantCulture);
        var resumedFrom = long.Parse(parts[2], CultureInfo.InvariantCulture);
        Assert.Equal("True", parts[3]);
        Assert.Equal(Count, written);

        // It resumed rather than restarting: at most the batch each worker had in flight was done again. `announced`
        // counts entities sent to the store before the kill, so it bounds the work done from above.
        Assert.True(resumedFrom > 0, "The migration started again from zero.");
        var redone = announced - resumedFrom;
        Assert.True(redone <= 2 * 200, $"{redone} entities were written again after the restart; one checkpoint interval is at most one batch (200) per worker (2).");

        await using var log = new SqliteChangeLog(_dir.File("source.db"));
        await log.InitializeAsync(CancellationToken.None);
        await using var vectors = new SqliteVectorStore(_dir.File("vectors.db"));
        await vectors.InitializeAsync([new CollectionDefinition("items", 8, VectorDistance.Cosine)], CancellationToken.None);
        Assert.Equal(Count, await vectors.CountAsync("items", CancellationToken.None));
        var sourceDigests = new Dictionary<string, EntityDigest>(StringComparer.Ordinal);
        await foreach (var d in log.Documents.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            sourceDigests[d.Key.Id] = d;
        }

        await foreach (var d in vectors.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            Assert.True(sourceDigests.TryGetValue(d.Key.Id, out var s) && s.Version == d.Version && s.RecordedHash == d.RecordedHash, $"{d.Key} differs from the source.");
        }
    }

    [Fact]
    public async Task Rollback_removes_what_the_migration_wrote_and_keeps_what_was_there()
    {
        await SeedAsync(3_000, 4);
        await using (var vectors = new SqliteVectorStore(_dir.File("vectors.db")))
        {
            // A record the replica already held at a newer version than the source's: the migration cannot replace it.
            await vectors.InitializeAsync([new CollectionDefinition("items", 4, VectorDistance.Cosine)], CancellationToken.None);
            await vectors.ApplyAsync([EntityChange.Upsert(Item(5, 4, revision: 99), new HlcTimestamp(long.MaxValue >> 1))], CancellationToken.None);
        }

        await using var engine = await TestEngine.StartAsync(b => b.UseSqlite(o => o.DirectoryPath = _dir.Path), o => o.ReplicasAwaitingBackfill.Add("vectors"));
        var migrations = engine.Services.GetRequiredService<IMigrationManager>();
        var report = await migrations.RunAsync(new MigrationRequest { Id = "to-undo", Target = "vectors", Collections = ["items"], Verify = false });
        Assert.Equal(3_000, report.Written);

        var rollback = await migrations.RollbackAsync("to-undo");

        Assert.Equal(2_999, rollback.Removed);
        var store = engine.Services.GetRequiredService<SqliteVectorStore>();
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
        Assert.Single(await store.ReadDigestsAsync("items", ["item-5"], CancellationToken.None));
    }

    [Fact]
    public async Task Re_embedding_into_a_new_dimension_switches_after_verifying_and_the_route_survives_a_restart()
    {
        await SeedAsync(2_000, 4);
        static ValueTask<SyncEntity> Embed(SyncEntity e, CancellationToken _) =>
            ValueTask.FromResult(new SyncEntity(e.Key, e.Document, Enumerable.Range(0, 16).Select(i => e.Vector.Span[i % 4] * (i + 1)).ToArray(), e.Edges));
        void Configure(CrossStoreSync.DependencyInjection.ICrossStoreSyncBuilder b)
        {
            b.UseSqlite(o => o.DirectoryPath = _dir.Path);
            b.AddTransform("embed-16", Embed);
        }

        await using (var engine = await TestEngine.StartAsync(Configure, o => o.AddCollection("items_v2", 16)))
        {
            var report = await engine.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest
            {
                Id = "reembed",
                Target = "vectors",
                Collections = ["items"],
                TargetCollection = "items_v2",
                TransformName = "embed-16",
            });
            Assert.True(report.IsVerified);
            Assert.Equal(2_000, report.Written);
        }

        // A new process: the route comes back from the log's checkpoints and new changes land in the new collection.
        await using (var engine = await TestEngine.StartAsync(Configure, o => o.AddCollection("items_v2", 16)))
        {
            var ticket = await engine.Manager.WriteAsync(Item(7, 4, revision: 50));
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, Wait));
            var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
            Assert.Equal(ticket.Version, Assert.Single(await vectors.ReadDigestsAsync("items_v2", ["item-7"], CancellationToken.None)).Version);
            Assert.NotEqual(ticket.Version, Assert.Single(await vectors.ReadDigestsAsync("items", ["item-7"], CancellationToken.None)).Version);
            var check = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
            Assert.True(check.IsConsistent, string.Join("; ", check.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
        }
    }

    private sealed class SynchronousProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
