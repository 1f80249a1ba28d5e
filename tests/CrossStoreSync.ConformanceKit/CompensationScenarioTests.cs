using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.ConformanceKit;

/// <summary>
/// <see cref="ReplicaRejectionPolicy.Compensate"/> end to end, run against every change log that keeps prior states: a
/// replica rejects one key of a batch for good; afterwards every store holds the prior state (or nothing) for it, the
/// other keys synced, the caller saw <see cref="SyncWaitOutcome.Compensated"/> and a deep check is clean; and a newer
/// application write racing the compensation wins in every store. Subclasses supply the engine.
/// </summary>
public abstract class CompensationScenarioTests
{
    protected const string Collection = "items";
    protected const int Dimension = 8;
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A running engine whose collection <c>items</c> (dimension 8) is configured with
    /// <see cref="ReplicaRejectionPolicy.Compensate"/>, with a vector and a graph replica behind fault plans.
    /// </summary>
    protected abstract Task<ICompensationHarness> StartAsync();

    protected static EntityKey Key(string id) => new(Collection, id);

    /// <summary>An entity whose document, vector and edge all change with <paramref name="revision"/>.</summary>
    protected static SyncEntity Item(string id, int revision) => new(
        Key(id),
        Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\",\"rev\":{revision}}}"),
        new float[] { revision, 1, 2, 3, 4, 5, 6, 7 },
        [new SyncEdge("REV", Key("rev-" + revision.ToString(System.Globalization.CultureInfo.InvariantCulture)))]);

    /// <summary>Selects the upsert of <paramref name="id"/> at <paramref name="revision"/>.</summary>
    protected static Func<EntityChange, bool> Revision(string id, int revision) =>
        change => change.Key == Key(id) && change.Entity is { } entity && Encoding.UTF8.GetString(entity.Document.Span).Contains($"\"rev\":{revision}}}", StringComparison.Ordinal);

    [Fact]
    public async Task Rejected_create_update_and_delete_are_undone_in_every_store_while_the_rest_of_each_batch_syncs()
    {
        await using var h = await StartAsync();
        var m = h.Manager;
        Assert.Equal(SyncWaitOutcome.Synced, await m.WaitForSyncAsync(await m.WriteBatchAsync([Item("upd", 1), Item("del", 1)]), Wait));
        h.VectorFaults.RejectChanges(Revision("new", 1), "vector index refuses it");
        h.VectorFaults.RejectChanges(Revision("upd", 2), "vector index refuses it");
        h.GraphFaults.RejectChanges(c => c.Key == Key("del") && c.Kind == ChangeKind.Delete, "graph keeps the node");

        var create = await m.WaitForSyncResultAsync(await m.WriteBatchAsync([Item("a", 1), Item("new", 1), Item("b", 1)]), Wait);
        var update = await m.WaitForSyncResultAsync(await m.WriteBatchAsync([Item("c", 1), Item("upd", 2), Item("d", 1)]), Wait);
        var delete = await m.WaitForSyncResultAsync(await m.DeleteAsync(Key("del")), Wait);

        foreach (var (result, id, store) in new[] { (create, "new", "vectors"), (update, "upd", "vectors"), (delete, "del", "graph") })
        {
            Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
            var record = Assert.Single(result.Compensations);
            Assert.Equal(Key(id), record.Key);
            Assert.Equal(CompensationState.Compensated, record.State);
            Assert.Equal(store, record.Store);
            Assert.True(record.ResolvedVersion > record.Version);
        }

        // The create left nothing anywhere; the update and the delete left revision 1 everywhere.
        foreach (var store in new ISyncStore[] { h.Source, h.Vectors, h.Graph })
        {
            Assert.Empty(await store.ReadDigestsAsync(Collection, ["new"], CancellationToken.None));
        }

        await AssertEverywhereAsync(h, "upd", 1);
        await AssertEverywhereAsync(h, "del", 1);
        foreach (var id in new[] { "a", "b", "c", "d" })
        {
            await AssertEverywhereAsync(h, id, 1);
        }

        await AssertDeepCheckCleanAsync(h);
        Assert.Empty(await m.GetDeadLettersAsync());
        Assert.Equal(3, (await m.GetCompensationsAsync()).Count);
        var status = await m.GetStatusAsync(Key("upd"));
        Assert.True(status.IsSynced, string.Join(", ", status.Stores));
        Assert.Equal("vectors", status.Compensation?.Store);
    }

    [Fact]
    public async Task Newer_write_before_the_compensation_runs_supersedes_it_and_stands_in_every_store()
    {
        await using var h = await StartAsync();
        var m = h.Manager;
        Assert.Equal(SyncWaitOutcome.Synced, await m.WaitForSyncAsync(await m.WriteAsync(Item("n", 1)), Wait));
        h.VectorFaults.RejectChanges(Revision("n", 2));
        var requested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.BeforeCompensate = async (_, ct) =>
        {
            requested.TrySetResult();
            await release.Task.WaitAsync(ct);
        };

        var rejected = await m.WriteAsync(Item("n", 2));
        await requested.Task.WaitAsync(Wait);
        var status = await m.GetStatusAsync(Key("n"));
        Assert.Equal(StoreSyncState.Compensating, status.Stores.Single(s => s.Store == "vectors").State);

        var newer = await m.WriteAsync(Item("n", 3));
        Assert.Equal(SyncWaitOutcome.Synced, await m.WaitForSyncAsync(newer, Wait));
        release.SetResult();
        var result = await m.WaitForSyncResultAsync(rejected, Wait);

        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal(CompensationState.Superseded, record.State);
        Assert.Equal(newer.Version, record.ResolvedVersion);
        await AssertEverywhereAsync(h, "n", 3);
        await AssertDeepCheckCleanAsync(h);
    }

    [Fact]
    public async Task Newer_write_racing_the_compensation_wins_in_every_store()
    {
        await using var h = await StartAsync();
        var m = h.Manager;
        for (var i = 0; i < 15; i++)
        {
            var id = "race" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(SyncWaitOutcome.Synced, await m.WaitForSyncAsync(await m.WriteAsync(Item(id, 1)), Wait));
            h.VectorFaults.RejectChanges(Revision(id, 2));
            Task<SyncTicket>? racing = null;

            // The newer write starts when the compensation does; whichever reaches the key first, the newer write must win.
            h.BeforeCompensate = (_, _) =>
            {
                racing = Task.Run(async () => await m.WriteAsync(Item(id, 3)));
                return Task.CompletedTask;
            };

            var result = await m.WaitForSyncResultAsync(await m.WriteAsync(Item(id, 2)), Wait);
            Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
            Assert.NotNull(racing);
            Assert.Equal(SyncWaitOutcome.Synced, await m.WaitForSyncAsync(await racing, Wait));
            h.BeforeCompensate = null;
            await AssertEverywhereAsync(h, id, 3);
        }

        await AssertDeepCheckCleanAsync(h);
    }

    /// <summary>Asserts that the source holds <paramref name="id"/> at <paramref name="revision"/> and every replica matches it exactly.</summary>
    protected static async Task AssertEverywhereAsync(ICompensationHarness h, string id, int revision)
    {
        var expected = Item(id, revision);
        var source = await h.Source.ReadAsync(Key(id), CancellationToken.None);
        Assert.True(source is not null, $"The source does not hold {id}.");
        Assert.Equal(EntityEncoding.ComputeContentHash(expected), source.ContentHash);
        foreach (var replica in new ISyncStore[] { h.Vectors, h.Graph })
        {
            var digest = Assert.Single(await replica.ReadDigestsAsync(Collection, [id], CancellationToken.None));
            Assert.Equal(source.Version, digest.Version);
            Assert.Equal(source.ContentHash, digest.RecordedHash);
            Assert.Equal(ProjectionHash.Compute(expected, replica.Kind), digest.ProjectionHash);
        }
    }

    protected static async Task AssertDeepCheckCleanAsync(ICompensationHarness h)
    {
        var report = await h.Services.GetRequiredService<IConsistencyChecker>().CheckAsync(Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
    }
}

/// <summary>A running engine for <see cref="CompensationScenarioTests"/>.</summary>
public interface ICompensationHarness : IAsyncDisposable
{
    ISyncManager Manager { get; }

    IServiceProvider Services { get; }

    IDocumentStore Source { get; }

    /// <summary>The vector replica's own store (under the fault plan).</summary>
    ISyncStore Vectors { get; }

    /// <summary>The graph replica's own store (under the fault plan).</summary>
    ISyncStore Graph { get; }

    StoreFaults VectorFaults { get; }

    StoreFaults GraphFaults { get; }

    /// <summary>Runs before each requested compensation is decided (the engine's test seam).</summary>
    Func<CompensationRecord, CancellationToken, Task>? BeforeCompensate { set; }
}
