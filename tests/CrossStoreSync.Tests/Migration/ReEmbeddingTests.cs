using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Migration;

/// <summary>Re-embedding into a new collection with a new dimension: backfill through a transform, route, verify, switch.</summary>
public sealed class ReEmbeddingTests
{
    private const string NewCollection = "items_v2";

    /// <summary>The "new model": an 8-dimension embedding derived from the old vector, so the expected output is known.</summary>
    private static ValueTask<SyncEntity> EmbedV2(SyncEntity entity, CancellationToken cancellationToken)
    {
        var old = entity.Vector.Span;
        var vector = new float[8];
        for (var i = 0; i < 8; i++)
        {
            vector[i] = old[i % old.Length] + i;
        }

        return ValueTask.FromResult(new SyncEntity(entity.Key, entity.Document, vector, entity.Edges));
    }

    private static Task<TestEngine> StartAsync(TestEngine? restartOf = null, bool registerTransform = true) => TestEngine.StartAsync(
        o => o.AddCollection(NewCollection, 8),
        configureServices: s =>
        {
            if (registerTransform)
            {
                s.AddCrossStoreSync().AddTransform("embed-v2", EmbedV2);
            }
        },
        restartOf: restartOf);

    private static MigrationRequest ReEmbed() => new()
    {
        Id = "reembed-v2",
        Target = "vectors",
        Collections = [Items.Collection],
        TargetCollection = NewCollection,
        TransformName = "embed-v2",
        InitialBatchSize = 64,
        MaxBatchSize = 256,
    };

    private static async Task<SyncTicket> WriteAllAsync(TestEngine engine, int count, int revision)
    {
        SyncTicket last = default;
        for (var start = 0; start < count; start += 500)
        {
            last = await engine.Manager.WriteBatchAsync(Enumerable.Range(start, 500).Select(i => Items.Entity("e" + i, revision)).ToArray());
        }

        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(last, TestEngine.Timeout));
        return last;
    }

    private static async Task<UInt128> ExpectedProjectionAsync(SyncEntity source)
    {
        var output = await EmbedV2(source, CancellationToken.None);
        return ProjectionHash.Compute(new SyncEntity(new EntityKey(NewCollection, source.Key.Id), default, output.Vector), StoreKind.Vector);
    }

    [Fact]
    public async Task A_re_embedding_fills_the_new_collection_routes_concurrent_changes_verifies_and_switches()
    {
        var engine = await StartAsync();
        await WriteAllAsync(engine, 2_000, revision: 1);
        var migrations = engine.Services.GetRequiredService<IMigrationManager>();

        // Writes race the backfill: they must reach the new collection through the route, not only the old one.
        var n = 0;
        var progress = new InlineProgress(p =>
        {
            if (p.Phase == MigrationPhase.Backfilling && p.Done > 0 && n < 300)
            {
                var i = Interlocked.Increment(ref n);
                _ = (i % 10 == 0
                    ? engine.Manager.DeleteAsync(Items.Key("e" + (i * 7 % 2_000)))
                    : engine.Manager.WriteAsync(Items.Entity("e" + (i * 7 % 2_000), revision: 100 + i))).AsTask().GetAwaiter().GetResult();
            }
        });

        var report = await migrations.RunAsync(ReEmbed(), progress);

        Assert.True(n > 0, "No write raced the re-embedding.");
        Assert.True(report.IsVerified, $"Verification found {report.Verification[0].Stores[0].Inconsistent} differences.");
        var liveCount = await engine.Source.CountAsync(Items.Collection, CancellationToken.None);
        Assert.Equal(liveCount, await engine.Vectors.CountAsync(NewCollection, CancellationToken.None));
        Assert.Equal(MigrationPhase.Completed, Assert.Single(await migrations.ListAsync()).Phase);

        // Switched: a new change goes to the new collection only; the old collection stays as it was until dropped.
        var oldVersion = engine.Vectors.GetVersion(Items.Key("e5"));
        var ticket = await engine.Manager.WriteAsync(Items.Entity("e5", revision: 999));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));
        Assert.Equal(oldVersion, engine.Vectors.GetVersion(Items.Key("e5")));
        var routed = Assert.Single(await engine.Vectors.ReadDigestsAsync(NewCollection, ["e5"], CancellationToken.None));
        Assert.Equal(ticket.Version, routed.Version);
        Assert.Equal(await ExpectedProjectionAsync(Items.Entity("e5", 999)), routed.ProjectionHash);
        var hits = await engine.Vectors.SearchAsync(NewCollection, (await EmbedV2(Items.Entity("e5", 999), CancellationToken.None)).Vector, 1, CancellationToken.None);
        Assert.Equal(new EntityKey(NewCollection, "e5"), hits[0].Key);

        // The checker follows the route for this store, deep included (the transform's output is what must be held).
        var checker = engine.Services.GetRequiredService<IConsistencyChecker>();
        var check = await checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(check.IsConsistent, string.Join("; ", check.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));

        // A damaged routed record is found under its source key and repaired through the route.
        engine.Vectors.EraseBehindTheLibrary(new EntityKey(NewCollection, "e9"));
        var damaged = await checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Stores = ["vectors"] });
        var finding = Assert.Single(damaged.Stores[0].Findings);
        Assert.Equal((Items.Key("e9"), InconsistencyKind.Missing), (finding.Key, finding.Kind));
        var repair = await checker.RepairAsync(damaged);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(repair.Ticket!.Value, TestEngine.Timeout));
        Assert.True((await checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Stores = ["vectors"] })).IsConsistent);

        // After a restart the route is loaded from the log's checkpoints and keeps routing.
        await engine.StopAsync();
        var restarted = await StartAsync(restartOf: engine);
        await using (restarted)
        {
            var after = await restarted.Manager.WriteAsync(Items.Entity("e6", revision: 555));
            Assert.Equal(SyncWaitOutcome.Synced, await restarted.Manager.WaitForSyncAsync(after, TestEngine.Timeout));
            Assert.Equal(after.Version, Assert.Single(await restarted.Vectors.ReadDigestsAsync(NewCollection, ["e6"], CancellationToken.None)).Version);
        }

        await engine.DisposeAsync();
    }

    [Fact]
    public async Task A_restart_without_the_routes_transform_fails_with_a_clear_error()
    {
        var engine = await StartAsync();
        await WriteAllAsync(engine, 500, revision: 1);
        await engine.Services.GetRequiredService<IMigrationManager>().RunAsync(ReEmbed());
        await engine.StopAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(restartOf: engine, registerTransform: false));
        Assert.Contains("embed-v2", error.Message, StringComparison.Ordinal);
        Assert.Contains("AddTransform", error.Message, StringComparison.Ordinal);
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Rolling_back_a_re_embedding_removes_the_new_collection_and_the_route()
    {
        await using var engine = await StartAsync();
        await WriteAllAsync(engine, 1_000, revision: 1);
        var migrations = engine.Services.GetRequiredService<IMigrationManager>();
        await migrations.RunAsync(ReEmbed());
        var routedTicket = await engine.Manager.WriteAsync(Items.Entity("e1", revision: 7));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(routedTicket, TestEngine.Timeout));

        var rollback = await migrations.RollbackAsync("reembed-v2");

        // Backfilled and routed records alike carried the migration id.
        Assert.Equal(1_000, rollback.Removed);
        Assert.Equal(0, await engine.Vectors.CountAsync(NewCollection, CancellationToken.None));
        var ticket = await engine.Manager.WriteAsync(Items.Entity("e2", revision: 8));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));
        Assert.Equal(ticket.Version, engine.Vectors.GetVersion(Items.Key("e2")));
        Assert.Equal(0, await engine.Vectors.CountAsync(NewCollection, CancellationToken.None));
    }

    [Fact]
    public async Task Bad_re_embedding_requests_are_refused_before_anything_is_written()
    {
        await using var engine = await TestEngine.StartAsync(
            o => o.AddCollection(NewCollection, 8).AddCollection("other", 4),
            configureServices: s => s.AddCrossStoreSync()
                .AddTransform("embed-v2", EmbedV2)
                .AddTransform("four", (e, _) => ValueTask.FromResult(e)));
        await WriteAllAsync(engine, 500, revision: 1);
        var migrations = engine.Services.GetRequiredService<IMigrationManager>();

        await Refused(ReEmbed() with { TargetCollection = "nowhere" }, "TargetCollection", "nowhere");
        await Refused(ReEmbed() with { TransformName = null }, "TransformName", NewCollection);
        await Refused(ReEmbed() with { Collections = [Items.Collection, "other"] }, "TargetCollection", "2");
        await Refused(ReEmbed() with { TargetCollection = Items.Collection }, "TargetCollection", Items.Collection);
        await Refused(ReEmbed() with { TransformName = "four" }, "dimension 4", "dimension 8");

        Assert.Equal(0, await engine.Vectors.CountAsync(NewCollection, CancellationToken.None));
        Assert.Empty(engine.Engine.Dispatchers.Single(d => d.Name == "vectors").Routes);

        async Task Refused(MigrationRequest request, string field, string value)
        {
            var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => migrations.RunAsync(request));
            Assert.Contains(field, error.Message, StringComparison.Ordinal);
            Assert.Contains(value, error.Message, StringComparison.Ordinal);
        }
    }

    private sealed class InlineProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
