using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;

namespace CrossStoreSync.ConformanceKit;

/// <summary>
/// Drift scenarios for the consistency checker, run against every store family: 100,000 entities written through the
/// engine, then replicas damaged behind the library's back (records deleted, rolled back, edited, orphans inserted),
/// then checked, repaired and checked again. Subclasses supply the engine and the out-of-band edits.
/// </summary>
public abstract class ConsistencyScenarioTests
{
    protected const string Collection = "items";
    protected const int Dimension = 8;
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(2);

    /// <summary>Number of entities written for the main drift-and-repair scenario.</summary>
    protected virtual int EntityCount => 100_000;

    /// <summary>Number of entities for the scenarios that compare modes and ranges (slower stores use fewer).</summary>
    protected virtual int SecondaryEntityCount => EntityCount;

    /// <summary>A running engine with one vector and one graph replica over a collection <c>items</c> of dimension 8.</summary>
    protected abstract Task<IScenarioHarness> StartAsync();

    protected static SyncEntity Item(int i, string text = "v1") => new(
        new EntityKey(Collection, "item-" + i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture)),
        Encoding.UTF8.GetBytes($"{{\"i\":{i},\"text\":\"{text}\"}}"),
        new float[] { i % 7, 1, 2, 3, 4, 5, 6, (i % 11) + 1 },
        [new SyncEdge("NEXT", new EntityKey(Collection, "item-" + (i + 1).ToString("D6", System.Globalization.CultureInfo.InvariantCulture)))]);

    private async Task<(IScenarioHarness Harness, IVectorStore Vectors, IGraphStore Graph)> LoadAsync(int count)
    {
        var harness = await StartAsync();
        SyncTicket last = default;
        const int batch = 2000;
        for (var start = 0; start < count; start += batch)
        {
            last = await harness.Manager.WriteBatchAsync(Enumerable.Range(start, Math.Min(batch, count - start)).Select(i => Item(i)).ToArray());
        }

        Assert.Equal(SyncWaitOutcome.Synced, await harness.Manager.WaitForSyncAsync(last, Wait));
        return (harness, harness.Vectors, harness.Graph);
    }

    /// <summary>Damages the replicas and returns what each drift should be reported as.</summary>
    private static async Task<Dictionary<(string Store, InconsistencyKind Kind), HashSet<EntityKey>>> DriftAsync(IScenarioHarness h, int count)
    {
        var expected = new Dictionary<(string, InconsistencyKind), HashSet<EntityKey>>();
        void Expect(ISyncStore store, InconsistencyKind kind, EntityKey key)
        {
            if (!expected.TryGetValue((store.Name, kind), out var set))
            {
                expected[(store.Name, kind)] = set = [];
            }

            set.Add(key);
        }

        // Each drift damages `count` keys spread over its own slice of the written keys, or inserts orphans.
        var slice = count / 20;
        var plan = new (ISyncStore Store, InconsistencyKind Kind, int Keys, int Slice, Func<ISyncStore, EntityKey, Task> Damage)[]
        {
            (h.Vectors, InconsistencyKind.Missing, 100, 0, h.EraseAsync),
            (h.Vectors, InconsistencyKind.Stale, 50, 1, h.RollBackAsync),
            (h.Vectors, InconsistencyKind.Corrupted, 20, 2, h.TamperAsync),
            (h.Graph, InconsistencyKind.Missing, 40, 3, h.EraseAsync),
            (h.Graph, InconsistencyKind.Stale, 10, 4, h.RollBackAsync),
            (h.Graph, InconsistencyKind.Corrupted, 15, 5, h.TamperAsync),
        };
        foreach (var (store, kind, keys, part, damage) in plan)
        {
            for (var i = 0; i < keys; i++)
            {
                var key = Item((part * slice) + (i * slice / keys)).Key;
                await damage(store, key);
                Expect(store, kind, key);
            }
        }

        // Stray records the source does not hold (for a graph: nodes left behind after deletes).
        foreach (var (store, orphans, offset) in new[] { (h.Vectors, 30, 1000), ((ISyncStore)h.Graph, 25, 2000) })
        {
            for (var i = 0; i < orphans; i++)
            {
                var orphan = Item(count + offset + i);
                await h.InsertOrphanAsync(store, orphan);
                Expect(store, InconsistencyKind.Orphaned, orphan.Key);
            }
        }

        return expected;
    }

    private static void AssertFindings(ConsistencyReport report, Dictionary<(string Store, InconsistencyKind Kind), HashSet<EntityKey>> expected, bool deep)
    {
        foreach (var store in report.Stores)
        {
            foreach (var kind in Enum.GetValues<InconsistencyKind>())
            {
                var want = kind == InconsistencyKind.Corrupted && !deep ? [] : expected.GetValueOrDefault((store.Store, kind)) ?? [];
                var got = store.Findings.Where(f => f.Kind == kind).Select(f => f.Key).ToHashSet();
                Assert.True(want.SetEquals(got), $"{store.Store} {kind}: expected {want.Count}, found {got.Count} (missing from report: {string.Join(", ", want.Except(got).Take(5))}; unexpected: {string.Join(", ", got.Except(want).Take(5))}).");
            }

            Assert.False(store.FindingsTruncated);
            Assert.Equal(store.Findings.Count, store.Inconsistent);
        }
    }

    [Fact]
    public async Task Every_kind_of_drift_is_found_by_a_deep_check_and_repaired_to_zero_differences()
    {
        var (h, _, _) = await LoadAsync(EntityCount);
        await using var harness = h;
        var clean = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(clean.IsConsistent, Describe(clean));
        Assert.Equal(EntityCount, clean.SourceEntities);
        Assert.All(clean.Stores, s => Assert.Equal(EntityCount, s.Consistent));

        var expected = await DriftAsync(h, EntityCount);
        var progress = new List<ConsistencyProgress>();
        var report = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true }, new SyncProgress<ConsistencyProgress>(progress.Add));
        AssertFindings(report, expected, deep: true);
        var vectors = report.Stores.Single(s => s.Store == h.Vectors.Name);
        Assert.Equal((100, 50, 20, 30), (vectors.Missing, vectors.Stale, vectors.Corrupted, vectors.Orphaned));
        Assert.Equal(EntityCount - 170, vectors.Consistent);
        Assert.True(vectors.BucketsDiffering > 0 && vectors.BucketsDiffering < vectors.BucketsCompared);
        Assert.Contains(progress, p => p.Phase == "compare");
        Assert.Contains(progress, p => p.Phase == "done" && p.Store == h.Graph.Name);

        var dryRun = await h.Checker.RepairAsync(report, dryRun: true);
        Assert.Null(dryRun.Ticket);
        Assert.Equal(expected.Values.SelectMany(k => k).Distinct().Count(), dryRun.Actions.Count);
        var orphanRepairs = dryRun.Actions.Where(a => int.Parse(a.Key.Id[5..], System.Globalization.CultureInfo.InvariantCulture) >= EntityCount).ToArray();
        Assert.Equal(55, orphanRepairs.Length);
        Assert.All(orphanRepairs, a => Assert.Equal(ChangeKind.Delete, a.Kind));
        Assert.All(dryRun.Actions.Except(orphanRepairs), a => Assert.Equal(ChangeKind.Upsert, a.Kind));
        var stillDrifted = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.Equal(report.Stores.Sum(s => s.Inconsistent), stillDrifted.Stores.Sum(s => s.Inconsistent));

        var repair = await h.Checker.RepairAsync(report);
        Assert.NotNull(repair.Ticket);
        Assert.Equal(SyncWaitOutcome.Synced, await h.Manager.WaitForSyncAsync(repair.Ticket.Value, Wait));
        var after = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(after.IsConsistent, Describe(after));
        Assert.All(after.Stores, s => Assert.Equal(EntityCount, s.Consistent));
    }

    [Fact]
    public async Task Shallow_and_memory_bounded_checks_find_the_same_drift_and_sampling_estimates_its_rate()
    {
        var count = SecondaryEntityCount;
        var (h, _, _) = await LoadAsync(count);
        await using var harness = h;
        var expected = await DriftAsync(h, count);

        var shallow = await h.Checker.CheckAsync(Collection);
        AssertFindings(shallow, expected, deep: false);

        var bloom = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Mode = ConsistencyCheckMode.MemoryBounded, Deep = true });
        foreach (var store in bloom.Stores)
        {
            foreach (var finding in store.Findings)
            {
                Assert.Contains(finding.Key, expected[(store.Store, finding.Kind)]);
            }

            // A difference escapes only through a Bloom false positive (about 1% at 10.6 bits per key).
            var total = expected.Where(e => e.Key.Store == store.Store).Sum(e => e.Value.Count);
            Assert.True(store.Inconsistent >= total * 0.95, $"{store.Store}: memory-bounded check found {store.Inconsistent} of {total}.");
        }

        var sample = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Mode = ConsistencyCheckMode.Sampling, SampleFraction = 0.25, ConfidenceLevel = 0.999, SampleSeed = 42, MerkleDepth = 12 });
        foreach (var store in sample.Stores)
        {
            var estimate = Assert.IsType<SamplingEstimate>(store.Estimate);
            var drifted = expected.Where(e => e.Key.Store == store.Store && e.Key.Kind != InconsistencyKind.Corrupted).Sum(e => e.Value.Count);
            var trueRate = (double)drifted / count;
            Assert.InRange(estimate.SampledEntities, count / 5, count / 3);
            Assert.InRange(trueRate, estimate.Lower, estimate.Upper);
            Assert.True(estimate.InconsistentEntities > 0);
        }
    }

    [Fact]
    public async Task A_check_can_run_range_by_range_and_the_ranges_add_up_to_the_full_check()
    {
        var count = SecondaryEntityCount;
        var (h, _, _) = await LoadAsync(count);
        await using var harness = h;
        await DriftAsync(h, count);
        var full = await h.Checker.CheckAsync(Collection);

        long sourceEntities = 0;
        var found = new Dictionary<string, long>();
        for (uint quarter = 0; quarter < 4; quarter++)
        {
            var part = await h.Checker.CheckAsync(Collection, new ConsistencyCheckOptions { Range = BucketRange.ForPrefix(2, quarter) });
            sourceEntities += part.SourceEntities;
            foreach (var s in part.Stores)
            {
                found[s.Store] = found.GetValueOrDefault(s.Store) + s.Inconsistent;
            }
        }

        Assert.Equal(full.SourceEntities, sourceEntities);
        foreach (var s in full.Stores)
        {
            Assert.Equal(s.Inconsistent, found[s.Store]);
        }

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => h.Checker.CheckAsync(Collection, cancellationToken: cancelled.Token));
    }

    private static string Describe(ConsistencyReport report) =>
        string.Join("; ", report.Stores.Select(s => $"{s.Store}: missing {s.Missing}, stale {s.Stale}, corrupted {s.Corrupted}, orphaned {s.Orphaned}, first {string.Join(",", s.Findings.Take(3))}"));

    /// <summary>An <see cref="IProgress{T}"/> that calls back synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly Lock _gate = new();

        public void Report(T value)
        {
            lock (_gate)
            {
                report(value);
            }
        }
    }
}

/// <summary>A running engine plus out-of-band edits of its replicas.</summary>
public interface IScenarioHarness : IAsyncDisposable
{
    ISyncManager Manager { get; }

    IConsistencyChecker Checker { get; }

    IVectorStore Vectors { get; }

    IGraphStore Graph { get; }

    /// <summary>Deletes the record entirely (no tombstone).</summary>
    Task EraseAsync(ISyncStore store, EntityKey key);

    /// <summary>Sets the record's recorded version back and its recorded hash to another value, content unchanged.</summary>
    Task RollBackAsync(ISyncStore store, EntityKey key);

    /// <summary>Edits the stored content, leaving the recorded version and hash.</summary>
    Task TamperAsync(ISyncStore store, EntityKey key);

    /// <summary>Inserts a record the source does not hold.</summary>
    Task InsertOrphanAsync(ISyncStore store, SyncEntity entity);
}
