using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Consistency;

public sealed class ConsistencyCheckerTests
{
    private static IConsistencyChecker Checker(TestEngine engine) => engine.Services.GetRequiredService<IConsistencyChecker>();

    [Theory]
    [InlineData("MerkleDepth", 9)]
    [InlineData("MerkleDepth", 25)]
    [InlineData("SampleFraction", 0.0)]
    [InlineData("SampleFraction", 1.5)]
    [InlineData("ConfidenceLevel", 0.3)]
    [InlineData("BloomBitsPerKey", 0.5)]
    [InlineData("MaxReportedFindings", -1)]
    public async Task Bad_options_are_rejected_naming_the_option_and_value(string option, double value)
    {
        await using var engine = await TestEngine.StartAsync();
        var options = new ConsistencyCheckOptions();
        var property = typeof(ConsistencyCheckOptions).GetProperty(option)!;
        property.SetValue(options, Convert.ChangeType(value, property.PropertyType, System.Globalization.CultureInfo.InvariantCulture));

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => Checker(engine).CheckAsync(Items.Collection, options));
        Assert.Contains("ConsistencyCheckOptions." + option, error.Message, StringComparison.Ordinal);
        Assert.Contains(Convert.ToString(property.GetValue(options), System.Globalization.CultureInfo.InvariantCulture)!, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_collection_store_or_empty_range_is_rejected()
    {
        await using var engine = await TestEngine.StartAsync();
        var checker = Checker(engine);
        var collection = await Assert.ThrowsAsync<ArgumentException>(() => checker.CheckAsync("unknown"));
        Assert.Contains("'unknown'", collection.Message, StringComparison.Ordinal);
        var store = await Assert.ThrowsAsync<ArgumentException>(() => checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Stores = ["nope"] }));
        Assert.Contains("'nope'", store.Message, StringComparison.Ordinal);
        Assert.Contains("vectors", store.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Range = new BucketRange(10, 5) }));
    }

    [Fact]
    public async Task An_empty_collection_is_consistent_and_repair_of_a_clean_report_writes_nothing()
    {
        await using var engine = await TestEngine.StartAsync();
        var report = await Checker(engine).CheckAsync(Items.Collection);
        Assert.True(report.IsConsistent);
        Assert.Equal(0, report.SourceEntities);
        Assert.Equal(["vectors", "graph"], report.Stores.Select(s => s.Store));

        var lsnBefore = engine.Log.Count;
        var repair = await Checker(engine).RepairAsync(report);
        Assert.Empty(repair.Actions);
        Assert.Null(repair.Ticket);
        Assert.Equal(lsnBefore, engine.Log.Count);
    }

    [Fact]
    public async Task Repair_reprojects_the_current_source_state_and_later_writes_still_win()
    {
        await using var engine = await TestEngine.StartAsync();
        await engine.WriteAndSyncAsync(Items.Entity("a", revision: 1));
        Assert.True(engine.Vectors.EraseBehindTheLibrary(Items.Key("a")));
        var report = await Checker(engine).CheckAsync(Items.Collection, new ConsistencyCheckOptions { Stores = ["vectors"] });
        Assert.Equal(1, report.Stores[0].Missing);

        // The application writes a newer revision between the check and the repair.
        var newer = await engine.WriteAndSyncAsync(Items.Entity("a", revision: 2));
        var repair = await Checker(engine).RepairAsync(report);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(repair.Ticket!.Value, TestEngine.Timeout));

        // The repair carries the state the source holds when it runs (revision 2), never the one the report saw.
        var stored = await engine.Source.ReadAsync(Items.Key("a"), CancellationToken.None);
        Assert.True(stored!.Version > newer.Version);
        Assert.Equal(Items.Entity("a", revision: 2).Document.ToArray(), stored.Entity.Document.ToArray());
        Assert.True((await Checker(engine).CheckAsync(Items.Collection)).IsConsistent);

        // Its version is one step above what it saw, so the clock's next write is newer and wins everywhere.
        var later = await engine.WriteAndSyncAsync(Items.Entity("a", revision: 3));
        Assert.True(later.Version > stored.Version);
        Assert.Equal(Items.Entity("a", revision: 3).Document.ToArray(), (await engine.Source.ReadAsync(Items.Key("a"), CancellationToken.None))!.Entity.Document.ToArray());
        Assert.Equal(later.Version, engine.Vectors.GetVersion(Items.Key("a")));
    }

    [Fact]
    public async Task Repair_after_an_edit_made_directly_in_the_source_records_the_hash_of_what_the_source_holds()
    {
        await using var engine = await TestEngine.StartAsync();
        await engine.WriteAndSyncAsync(Items.Entity("edited"));

        // Another program changes the vector in the source of truth, leaving _sync (version, hash) as it was.
        Assert.True(engine.Source.TamperBehindTheLibrary(Items.Key("edited"), e => new SyncEntity(e.Key, e.Document, new float[] { 9, 9, 9, 9 }, e.Edges)));
        var checker = engine.Services.GetRequiredService<IConsistencyChecker>();
        var drifted = await checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Deep = true, Stores = ["vectors"] });
        Assert.Equal(1, drifted.Stores[0].Corrupted);

        var repair = await checker.RepairAsync(drifted);
        Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(repair.Ticket!.Value, TestEngine.Timeout));

        var source = await engine.Source.ReadAsync(Items.Key("edited"), CancellationToken.None);
        Assert.Equal(CrossStoreSync.Hashing.EntityEncoding.ComputeContentHash(source!.Entity), source.ContentHash);
        await engine.AssertReplicasMatchSourceAsync(Items.Key("edited"));
        Assert.True((await checker.CheckAsync(Items.Collection, new ConsistencyCheckOptions { Deep = true })).IsConsistent);
    }

    [Fact]
    public async Task Findings_beyond_the_limit_are_counted_but_not_listed()
    {
        await using var engine = await TestEngine.StartAsync();
        for (var i = 0; i < 30; i++)
        {
            await engine.Manager.WriteAsync(Items.Entity("k" + i));
        }

        await engine.WriteAndSyncAsync(Items.Entity("last"));
        for (var i = 0; i < 30; i++)
        {
            engine.Graph.EraseBehindTheLibrary(Items.Key("k" + i));
        }

        var report = await Checker(engine).CheckAsync(Items.Collection, new ConsistencyCheckOptions { MaxReportedFindings = 10, Stores = ["graph"] });
        var graph = Assert.Single(report.Stores);
        Assert.Equal(30, graph.Missing);
        Assert.Equal(10, graph.Findings.Count);
        Assert.True(graph.FindingsTruncated);
    }

    [Fact]
    public async Task Sampling_with_a_seed_is_reproducible()
    {
        await using var engine = await TestEngine.StartAsync();
        await engine.Manager.WriteBatchAsync(Enumerable.Range(0, 500).Select(i => Items.Entity("s" + i)).ToArray());
        await engine.WriteAndSyncAsync(Items.Entity("z"));
        for (var i = 0; i < 500; i += 5)
        {
            engine.Vectors.EraseBehindTheLibrary(Items.Key("s" + i));
        }

        var options = new ConsistencyCheckOptions { Mode = ConsistencyCheckMode.Sampling, SampleFraction = 0.3, SampleSeed = 7, MerkleDepth = 10, Stores = ["vectors"] };
        var first = await Checker(engine).CheckAsync(Items.Collection, options);
        var second = await Checker(engine).CheckAsync(Items.Collection, options);
        Assert.Equal(first.Stores[0].Estimate, second.Stores[0].Estimate);
        Assert.Equal(first.Stores[0].Findings.Select(f => f.Key), second.Stores[0].Findings.Select(f => f.Key));
        Assert.InRange(0.2, first.Stores[0].Estimate!.Lower, first.Stores[0].Estimate!.Upper);
    }

    [Theory]
    [InlineData(0.95, 1.959963985)]
    [InlineData(0.99, 2.575829304)]
    [InlineData(0.5, 0.674489750)]
    public void Normal_quantile_matches_known_values(double confidence, double z) =>
        Assert.Equal(z, WilsonInterval.NormalQuantile(0.5 + (confidence / 2)), 6);

    [Fact]
    public void Wilson_interval_matches_a_worked_example_and_stays_in_bounds()
    {
        // 10 of 100 at 95%: [0.0552, 0.1744].
        var (lower, upper) = WilsonInterval.Compute(10, 100, 0.95);
        Assert.Equal(0.0552, lower, 3);
        Assert.Equal(0.1744, upper, 3);
        Assert.Equal((0.0, 1.0), WilsonInterval.Compute(0, 0, 0.95));
        var (zeroLower, zeroUpper) = WilsonInterval.Compute(0, 1000, 0.95);
        Assert.Equal(0, zeroLower, 12);
        Assert.InRange(zeroUpper, 0.003, 0.004);
    }
}
