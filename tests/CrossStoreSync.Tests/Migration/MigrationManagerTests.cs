using System.Collections.Concurrent;
using CrossStoreSync.Consistency;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using CrossStoreSync.Testing.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Migration;

public sealed class MigrationManagerTests
{
    private static HlcTimestamp Seeded(int i) => new(1_700_000_000_000 + i, 0, 0);

    /// <summary>Writes entities straight into the source, as data that existed before the replicas did.</summary>
    private static async Task SeedSourceAsync(TestEngine engine, int count, int from = 0)
    {
        var changes = Enumerable.Range(from, count).Select(i => EntityChange.Upsert(Items.Entity("e" + i), Seeded(i))).ToArray();
        await engine.Source.ApplyAsync(changes, CancellationToken.None);
    }

    private static Task<TestEngine> StartAsync(Action<IServiceCollection>? services = null) =>
        TestEngine.StartAsync(o => o.ReplicasAwaitingBackfill.Add("vectors"), configureServices: services);

    private static IMigrationManager Migrations(TestEngine engine) => engine.Services.GetRequiredService<IMigrationManager>();

    private static MigrationRequest Request(string id = "m1", string target = "vectors", int workers = 3) =>
        new() { Id = id, Target = target, Workers = workers, InitialBatchSize = 64, MinBatchSize = 16, MaxBatchSize = 512 };

    [Fact]
    public async Task A_backfill_fills_an_empty_replica_with_every_source_entity_and_verifies_it()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 5_000);

        var report = await Migrations(engine).RunAsync(Request());

        Assert.Equal(5_000, report.Written);
        Assert.Equal(0, report.Failed);
        Assert.Equal(0, report.ResumedFrom);
        Assert.True(report.IsVerified, "The verification check found differences.");
        Assert.Single(report.Verification);
        Assert.Equal(5_000, report.Verification[0].SourceEntities);
        Assert.Equal(5_000, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));
        foreach (var i in new[] { 0, 1234, 4999 })
        {
            Assert.Equal(Seeded(i), engine.Vectors.GetVersion(Items.Key("e" + i)));
        }

        var status = Assert.Single(await Migrations(engine).ListAsync());
        Assert.Equal(("m1", "vectors", MigrationPhase.Completed, 5_000L), (status.MigrationId, status.Target, status.Phase, status.Done));
    }

    [Fact]
    public async Task Writes_made_during_the_backfill_are_not_lost()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 20_000);
        var tickets = new ConcurrentBag<SyncTicket>();
        var random = new Random(7);
        var writes = 0;

        // After every batch, on the worker's own thread, updates, deletes and inserts hit keys behind and ahead of
        // the scan, so they race it for the whole backfill whatever the machine's speed.
        var progress = new SynchronousProgress(p =>
        {
            if (p.Phase != MigrationPhase.Backfilling || p.Done == 0)
            {
                return;
            }

            for (var i = 0; i < 5; i++)
            {
                int n, key;
                lock (random)
                {
                    n = ++writes;
                    key = random.Next(22_000);
                }

                var id = "e" + key;
                tickets.Add(n % 5 == 0
                    ? engine.Manager.DeleteAsync(Items.Key(id)).AsTask().GetAwaiter().GetResult()
                    : engine.Manager.WriteAsync(Items.Entity(id, revision: 2 + n)).AsTask().GetAwaiter().GetResult());
            }
        });

        var report = await Migrations(engine).RunAsync(Request() with { MaxBatchSize = 128 }, progress);
        Assert.True(writes > 100, $"Only {writes} writes raced the backfill.");
        var last = tickets.MaxBy(t => t.Lsns.Last);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TestEngine.Timeout));

        var check = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync(Items.Collection, new ConsistencyCheckOptions { Stores = ["vectors"] });
        Assert.True(check.IsConsistent, $"{check.Stores[0].Inconsistent} differences after the backfill: {string.Join(", ", check.Stores[0].Findings.Take(5))}");
        Assert.Equal(0, report.StartLsn);
    }

    [Fact]
    public async Task A_new_replica_awaiting_backfill_starts_at_the_log_position_taken_before_the_scan()
    {
        await using var engine = await StartAsync();
        for (var i = 0; i < 50; i++)
        {
            await engine.Manager.WriteAsync(Items.Entity("logged" + i));
        }

        var head = await engine.Log.GetLastLsnAsync(CancellationToken.None);
        var dispatcher = engine.Engine.Dispatchers.Single(d => d.Name == "vectors");
        Assert.True(dispatcher.AwaitingBackfill);
        Assert.Equal(0, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));

        var report = await Migrations(engine).RunAsync(Request());

        Assert.Equal(head, report.StartLsn);
        Assert.Equal(50, report.Written);
        Assert.True(dispatcher.Cursor.Value >= head);
        Assert.True(report.IsVerified);
    }

    [Fact]
    public async Task A_cancelled_migration_resumes_from_its_checkpoints_and_writes_each_entity_once()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 10_000);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(p =>
        {
            if (p.Done >= 3_000)
            {
                cancel.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Migrations(engine).RunAsync(Request(), progress, cancel.Token));
        var interrupted = Assert.Single(await Migrations(engine).ListAsync());
        Assert.Equal(MigrationPhase.Backfilling, interrupted.Phase);
        Assert.InRange(interrupted.Done, 3_000, 10_000 - 1);

        var report = await Migrations(engine).RunAsync(Request());

        Assert.Equal(interrupted.Done, report.ResumedFrom);
        Assert.Equal(10_000, report.Written);
        Assert.True(report.IsVerified);
    }

    [Fact]
    public async Task Batch_sizes_grow_while_the_target_is_fast_and_stay_within_bounds()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 20_000);
        var sizes = new ConcurrentBag<int>();
        var progress = new SynchronousProgress(p => sizes.Add(p.BatchSize));

        var report = await Migrations(engine).RunAsync(Request(workers: 1) with { TargetBatchLatency = TimeSpan.FromSeconds(10) }, progress);

        Assert.True(report.BatchSizes.Max > 64, $"The batch size never grew: {report.BatchSizes}.");
        Assert.All(sizes, s => Assert.InRange(s, 16, 512));
        Assert.Contains(sizes, s => s > 64);
    }

    [Fact]
    public async Task Transient_target_failures_are_retried_with_smaller_batches()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 2_000);
        engine.VectorFaults.FailNextCalls(3);

        var report = await Migrations(engine).RunAsync(Request(workers: 1) with { TargetBatchLatency = TimeSpan.FromSeconds(10) });

        Assert.Equal(3, report.Retries);
        Assert.True(report.BatchSizes.Min < 64, $"No failure shrank the batch: {report.BatchSizes}.");
        Assert.Equal(2_000, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));
    }

    [Fact]
    public async Task A_target_that_stays_down_fails_the_run_with_a_resumable_error()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 500);
        engine.VectorFaults.GoDown();

        var error = await Assert.ThrowsAsync<MigrationException>(() => Migrations(engine).RunAsync(Request(workers: 1) with { MaxRetries = 2 }));
        Assert.Equal("m1", error.MigrationId);
        Assert.Contains("vectors", error.Message, StringComparison.Ordinal);

        engine.VectorFaults.ComeBack();
        var report = await Migrations(engine).RunAsync(Request(workers: 1) with { MaxRetries = 2 });
        Assert.Equal(500, report.Written);
        Assert.True(report.IsVerified);
    }

    [Fact]
    public async Task An_entity_the_transform_rejects_is_dead_lettered_with_its_reason_and_the_rest_is_written()
    {
        await using var engine = await StartAsync(s => s.AddCrossStoreSync().AddTransform("scale", (entity, _) =>
            entity.Key.Id == "e7"
                ? throw new InvalidOperationException("cannot embed e7")
                : ValueTask.FromResult(new SyncEntity(entity.Key, entity.Document, entity.Vector.ToArray().Select(x => x * 2).ToArray(), entity.Edges))));
        await SeedSourceAsync(engine, 100);

        var report = await Migrations(engine).RunAsync(Request() with { TransformName = "scale", Verify = false });

        Assert.Equal(99, report.Written);
        Assert.Equal(1, report.Failed);
        var failure = Assert.Single(report.Failures);
        Assert.Equal(Items.Key("e7"), failure.Key);
        Assert.Contains("cannot embed e7", failure.Reason, StringComparison.Ordinal);
        var letter = Assert.Single(await engine.Manager.GetDeadLettersAsync("vectors"));
        Assert.Equal(Items.Key("e7"), letter.Key);
        Assert.Null(engine.Vectors.GetVersion(Items.Key("e7")));
        var digest = Assert.Single(await engine.Vectors.ReadDigestsAsync(Items.Collection, ["e8"], CancellationToken.None));
        Assert.Equal(ProjectionOf(new SyncEntity(Items.Key("e8"), default, new float[] { 2, 2, 4, 6 })), digest.ProjectionHash);
    }

    private static UInt128 ProjectionOf(SyncEntity entity) => CrossStoreSync.Hashing.ProjectionHash.Compute(entity, StoreKind.Vector);

    [Fact]
    public async Task Rollback_leaves_the_target_as_it_was_before_the_migration()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 1_000);

        // The replica already held a few records: two at the source's version (the migration leaves them alone) and
        // one newer (the version guard keeps it).
        await engine.Vectors.ApplyAsync([EntityChange.Upsert(Items.Entity("e1"), Seeded(1)), EntityChange.Upsert(Items.Entity("e2"), Seeded(2)), EntityChange.Upsert(Items.Entity("e3", 9), Seeded(5_000))], CancellationToken.None);
        var before = await SnapshotAsync(engine.Vectors);

        var report = await Migrations(engine).RunAsync(Request() with { Verify = false });
        Assert.Equal(1_000, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));

        var rollback = await Migrations(engine).RollbackAsync("m1");

        Assert.Equal(997, rollback.Removed);
        Assert.Equal(before, await SnapshotAsync(engine.Vectors));
        Assert.Equal(MigrationPhase.RolledBack, Assert.Single(await Migrations(engine).ListAsync()).Phase);
        await Assert.ThrowsAsync<ArgumentException>(() => Migrations(engine).RunAsync(Request()));
        Assert.Equal(1_000, report.Written);
    }

    private static async Task<string[]> SnapshotAsync(ISyncStore store)
    {
        var digests = new List<string>();
        await foreach (var d in store.ScanDigestsAsync(Items.Collection, BucketRange.All, CancellationToken.None))
        {
            digests.Add($"{d.Key}@{d.Version}#{d.RecordedHash:X}/{d.ProjectionHash:X}");
        }

        digests.Sort(StringComparer.Ordinal);
        return [.. digests];
    }

    [Fact]
    public async Task Bad_requests_are_refused_with_the_field_and_value_before_anything_is_written()
    {
        await using var engine = await StartAsync(s => s.AddCrossStoreSync().AddTransform("wrong-dimension", (entity, _) =>
            ValueTask.FromResult(new SyncEntity(entity.Key, entity.Document, new float[] { 1, 2, 3 }, entity.Edges))));
        await SeedSourceAsync(engine, 10);
        var migrations = Migrations(engine);

        await Refused(Request(target: "nowhere"), "Target", "nowhere");
        await Refused(Request() with { Source = "elsewhere" }, "Source", "elsewhere");
        await Refused(Request() with { Collections = ["missing"] }, "Collections", "missing");
        await Refused(Request(id: "bad id!"), "Id", "bad id!");
        await Refused(Request(workers: 0), "Workers", "0");
        await Refused(Request() with { MinBatchSize = 100, MaxBatchSize = 10, InitialBatchSize = 50 }, "MaxBatchSize", "10");
        await Refused(Request() with { TransformName = "unknown" }, "TransformName", "unknown");
        await Refused(Request() with { TargetCollection = "items2" }, "TargetCollection", "items2");
        await Refused(Request() with { TransformName = "wrong-dimension" }, "dimension 3", "dimension 4");

        Assert.Equal(0, await engine.Vectors.CountAsync(Items.Collection, CancellationToken.None));
        Assert.Empty(await migrations.ListAsync());

        async Task Refused(MigrationRequest request, string field, string value)
        {
            var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => migrations.RunAsync(request));
            Assert.Contains(field, error.Message, StringComparison.Ordinal);
            Assert.Contains(value, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_replica_awaiting_backfill_is_refused_a_partial_migration_and_started_by_a_full_one()
    {
        await using var engine = await TestEngine.StartAsync(o =>
        {
            o.AddCollection("other", Items.Dimension);
            o.ReplicasAwaitingBackfill.Add("vectors");
        });
        await SeedSourceAsync(engine, 100);
        var migrations = Migrations(engine);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => migrations.RunAsync(Request() with { Collections = [Items.Collection] }));
        Assert.Contains("ReplicasAwaitingBackfill", error.Message, StringComparison.Ordinal);
        Assert.Contains("[items]", error.Message, StringComparison.Ordinal);
        Assert.True(engine.Engine.Dispatchers.Single(d => d.Name == "vectors").AwaitingBackfill);

        var report = await migrations.RunAsync(Request());
        Assert.Equal(100, report.Written);
        Assert.False(engine.Engine.Dispatchers.Single(d => d.Name == "vectors").AwaitingBackfill);
    }

    [Fact]
    public async Task Progress_reports_and_events_count_up_to_the_total_and_end_completed()
    {
        await using var engine = await StartAsync();
        await SeedSourceAsync(engine, 3_000);
        var reports = new ConcurrentQueue<MigrationProgress>();
        var events = new ConcurrentQueue<MigrationProgress>();
        var migrations = Migrations(engine);
        migrations.ProgressChanged += (_, p) => events.Enqueue(p);

        await migrations.RunAsync(Request(), new SynchronousProgress(reports.Enqueue));

        Assert.Equal(reports.Count, events.Count);
        var backfill = reports.Where(p => p.Phase == MigrationPhase.Backfilling && p.Done > 0).ToArray();
        Assert.NotEmpty(backfill);
        Assert.All(backfill, p => Assert.Equal(3_000, p.Total));
        Assert.Contains(backfill, p => p.EntitiesPerSecond > 0 && p.EstimatedRemaining is not null);
        var last = reports.Last();
        Assert.Equal((MigrationPhase.Completed, 3_000L, 1.0), (last.Phase, last.Done, last.Fraction));
    }

    /// <summary>Reports on the caller's thread, unlike <see cref="Progress{T}"/>, so the test sees every report before the run returns.</summary>
    private sealed class SynchronousProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
