using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Sync;

/// <summary>
/// <see cref="ReplicaRejectionPolicy.Compensate"/> on the generic path (a change log separate from the source: pending,
/// then committed), with the in-memory log and stores.
/// </summary>
public sealed class CompensationTests
{
    private static void Compensate(CrossStoreSync.Configuration.CrossStoreSyncOptions o) =>
        o.AddCollection(Items.Collection, Items.Dimension, onReplicaRejection: ReplicaRejectionPolicy.Compensate);

    /// <summary>A rule for <c>RejectChanges</c>: the upsert of <paramref name="id"/> at document revision <paramref name="revision"/>.</summary>
    internal static Func<EntityChange, bool> Revision(string id, int revision) =>
        change => change.Key == Items.Key(id) && change.Entity is { } entity && Encoding.UTF8.GetString(entity.Document.Span).Contains($"\"rev\":{revision}}}", StringComparison.Ordinal);

    [Fact]
    public async Task Rejected_update_is_undone_in_every_store_and_the_rest_of_the_batch_syncs()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        await using var events = new EventRecorder(engine.Manager);
        var v1 = await engine.WriteAndSyncAsync(Items.Entity("u", revision: 1));
        engine.VectorFaults.RejectChanges(Revision("u", 2), "vector index refuses revision 2");

        var batch = await engine.Manager.WriteBatchAsync([Items.Entity("o1"), Items.Entity("u", revision: 2), Items.Entity("o2")]);
        var result = await engine.Manager.WaitForSyncResultAsync(batch, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal(Items.Key("u"), record.Key);
        Assert.Equal(CompensationState.Compensated, record.State);
        Assert.Equal(ChangeKind.Upsert, record.Kind);
        Assert.Equal("vectors", record.Store);
        Assert.Contains("vector index refuses revision 2", record.Reason, StringComparison.Ordinal);
        Assert.Equal(v1.Version, record.Prior.Version);
        Assert.True(record.ResolvedVersion > record.Version, "The compensating change must be versioned above the rejected write.");

        // Every store holds revision 1 again, at the compensating change's version; the other keys synced normally.
        await AssertRevisionEverywhereAsync(engine, "u", 1);
        Assert.Equal(record.ResolvedVersion, engine.Source.GetVersion(Items.Key("u")));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("o1"));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("o2"));
        await AssertDeepCheckCleanAsync(engine);
        Assert.Empty(await engine.Manager.GetDeadLettersAsync());

        var status = await engine.Manager.GetStatusAsync(Items.Key("u"));
        Assert.True(status.IsSynced, string.Join(", ", status.Stores));
        Assert.Equal(CompensationState.Compensated, status.Compensation?.State);
        var compensated = await events.WaitForAsync(e => e.Kind == SyncEventKind.Compensated, "compensated");
        Assert.Equal("vectors", compensated.Store);
        Assert.Equal(Items.Key("u"), compensated.Key);
        Assert.Contains("undone in every store", compensated.Message, StringComparison.Ordinal);
        Assert.Equal(record.Lsn, Assert.Single(await engine.Manager.GetCompensationsAsync()).Lsn);
    }

    [Fact]
    public async Task Rejected_create_is_deleted_from_every_store()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        engine.GraphFaults.RejectChanges(Revision("new", 1), "graph refuses the node");

        var batch = await engine.Manager.WriteBatchAsync([Items.Entity("new"), Items.Entity("fine")]);
        var result = await engine.Manager.WaitForSyncResultAsync(batch, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal("graph", record.Store);
        Assert.Equal(ChangeKind.Delete, record.Prior.Kind);
        foreach (var store in engine.AllStores)
        {
            Assert.Empty(await store.ReadDigestsAsync(Items.Collection, ["new"], CancellationToken.None));
        }

        Assert.Null(await engine.Source.ReadAsync(Items.Key("new"), CancellationToken.None));
        await engine.AssertReplicasMatchSourceAsync(Items.Key("fine"));
        await AssertDeepCheckCleanAsync(engine);
    }

    [Fact]
    public async Task Rejected_delete_brings_the_entity_back_in_every_store()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        var v1 = await engine.WriteAndSyncAsync(Items.Entity("d", revision: 1));
        engine.GraphFaults.RejectChanges(c => c.Key == Items.Key("d") && c.Kind == ChangeKind.Delete, "graph keeps its nodes");

        var deleted = await engine.Manager.DeleteAsync(Items.Key("d"));
        var result = await engine.Manager.WaitForSyncResultAsync(deleted, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal(ChangeKind.Delete, record.Kind);
        Assert.Equal(v1.Version, record.Prior.Version);
        await AssertRevisionEverywhereAsync(engine, "d", 1);
        await AssertDeepCheckCleanAsync(engine);
    }

    [Fact]
    public async Task Newer_write_that_arrives_before_the_compensation_runs_supersedes_it_and_stands_everywhere()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        await engine.WriteAndSyncAsync(Items.Entity("n", revision: 1));
        engine.VectorFaults.RejectChanges(Revision("n", 2));
        var requested = new TaskCompletionSource<CompensationRecord>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        engine.Engine.BeforeCompensate = async (record, ct) =>
        {
            requested.TrySetResult(record);
            await release.Task.WaitAsync(ct);
        };

        var rejected = await engine.Manager.WriteAsync(Items.Entity("n", revision: 2));
        await requested.Task.WaitAsync(TestEngine.Timeout);

        // The rejection is recorded; before the compensation runs, the application writes revision 3.
        var newer = await engine.WriteAndSyncAsync(Items.Entity("n", revision: 3));
        release.SetResult();
        var result = await engine.Manager.WaitForSyncResultAsync(rejected, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal(CompensationState.Superseded, record.State);
        Assert.Equal(newer.Version, record.ResolvedVersion);
        Assert.Null(record.CompensationLsn);
        await AssertRevisionEverywhereAsync(engine, "n", 3);
        Assert.Equal(newer.Version, engine.Source.GetVersion(Items.Key("n")));
        await AssertDeepCheckCleanAsync(engine);
    }

    [Fact]
    public async Task Newer_write_racing_the_compensation_wins_in_every_store()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        for (var i = 0; i < 20; i++)
        {
            var id = $"race{i}";
            await engine.WriteAndSyncAsync(Items.Entity(id, revision: 1));
            engine.VectorFaults.RejectChanges(Revision(id, 2));
            Task<SyncTicket>? racing = null;

            // The newer write starts exactly when the compensation does: whichever reaches the key first, it must win.
            engine.Engine.BeforeCompensate = (record, _) =>
            {
                racing = Task.Run(async () => await engine.Manager.WriteAsync(Items.Entity(id, revision: 3)));
                return Task.CompletedTask;
            };

            var rejected = await engine.Manager.WriteAsync(Items.Entity(id, revision: 2));
            var result = await engine.Manager.WaitForSyncResultAsync(rejected, TestEngine.Timeout);
            Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
            Assert.NotNull(racing);
            var newer = await racing;
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(newer, TestEngine.Timeout));

            await AssertRevisionEverywhereAsync(engine, id, 3);
            await engine.AssertReplicasMatchSourceAsync(Items.Key(id));
            engine.Engine.BeforeCompensate = null;
        }

        await AssertDeepCheckCleanAsync(engine);
    }

    [Fact]
    public async Task Compensation_decided_before_a_restart_is_carried_out_by_the_next_process()
    {
        await using var first = await TestEngine.StartAsync(Compensate);
        await first.WriteAndSyncAsync(Items.Entity("k", revision: 1));
        first.VectorFaults.RejectChanges(Revision("k", 2));
        var requested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Engine.BeforeCompensate = async (_, ct) =>
        {
            requested.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };

        var rejected = await first.Manager.WriteAsync(Items.Entity("k", revision: 2));
        await requested.Task.WaitAsync(TestEngine.Timeout);
        await first.StopAsync();

        // Stopped between the durable rejection and the compensating write: only the log knows what to do.
        Assert.Equal(CompensationState.Requested, Assert.Single(await first.Log.ListCompensationsAsync(new CompensationQuery(10), CancellationToken.None)).State);

        await using var second = await TestEngine.StartAsync(Compensate, restartOf: first);
        var result = await second.Manager.WaitForSyncResultAsync(rejected, TestEngine.Timeout);
        Assert.Equal(SyncWaitOutcome.Compensated, result.Outcome);
        Assert.Equal(CompensationState.Compensated, Assert.Single(result.Compensations).State);
        await AssertRevisionEverywhereAsync(second, "k", 1);
        await AssertDeepCheckCleanAsync(second);
    }

    [Fact]
    public async Task Per_write_option_overrides_the_collection_policy_both_ways()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        engine.VectorFaults.RejectChanges(Revision("dl", 1), "refused");
        engine.VectorFaults.RejectChanges(Revision("cp", 1), "refused");

        var deadLettered = await engine.Manager.WriteAsync(Items.Entity("dl"), WriteOptions.DeadLetter);
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(deadLettered, TestEngine.Timeout));
        Assert.Equal(Items.Key("dl"), Assert.Single(await engine.Manager.GetDeadLettersAsync()).Key);
        Assert.NotNull(await engine.Source.ReadAsync(Items.Key("dl"), CancellationToken.None));

        await using var plain = await TestEngine.StartAsync();
        plain.VectorFaults.RejectChanges(Revision("cp", 1), "refused");
        var compensated = await plain.Manager.WriteAsync(Items.Entity("cp"), WriteOptions.Compensate);
        Assert.Equal(SyncWaitOutcome.Compensated, await plain.Manager.WaitForSyncAsync(compensated, TestEngine.Timeout));
        Assert.Null(await plain.Source.ReadAsync(Items.Key("cp"), CancellationToken.None));
        Assert.Empty(await plain.Manager.GetDeadLettersAsync());
    }

    [Fact]
    public async Task Compensating_change_rejected_as_well_is_dead_lettered_and_compensations_do_not_cascade()
    {
        await using var engine = await TestEngine.StartAsync(Compensate);
        await engine.WriteAndSyncAsync(Items.Entity("x", revision: 1));
        engine.VectorFaults.RejectKey(Items.Key("x"), "vectors refuse the key altogether");

        var rejected = await engine.Manager.WriteAsync(Items.Entity("x", revision: 2));
        var result = await engine.Manager.WaitForSyncResultAsync(rejected, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.DeadLettered, result.Outcome);
        var record = Assert.Single(result.Compensations);
        Assert.Equal(CompensationState.Compensated, record.State);
        var letter = Assert.Single(await engine.Manager.GetDeadLettersAsync("vectors"));
        Assert.Equal(record.CompensationLsn, letter.Lsn);
        Assert.Single(await engine.Manager.GetCompensationsAsync());
    }

    [Fact]
    public async Task Under_dead_letter_policy_a_rejection_is_dead_lettered_and_nothing_is_compensated()
    {
        await using var engine = await TestEngine.StartAsync();
        engine.VectorFaults.RejectChanges(Revision("p", 2));
        await engine.WriteAndSyncAsync(Items.Entity("p", revision: 1));

        var rejected = await engine.Manager.WriteAsync(Items.Entity("p", revision: 2));
        var result = await engine.Manager.WaitForSyncResultAsync(rejected, TestEngine.Timeout);

        Assert.Equal(SyncWaitOutcome.DeadLettered, result.Outcome);
        Assert.Empty(result.Compensations);
        Assert.Empty(await engine.Manager.GetCompensationsAsync());
        Assert.Contains("\"rev\":2", (await engine.Source.ReadAsync(Items.Key("p"), CancellationToken.None))!.Entity.DocumentText, StringComparison.Ordinal);
        Assert.Empty(await engine.Log.ListCompensationsAsync(new CompensationQuery(10) { State = CompensationState.Armed }, CancellationToken.None));
    }

    [Fact]
    public async Task Compensate_policy_with_a_log_that_cannot_keep_prior_states_fails_at_start_naming_the_collection()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await TestEngine.StartAsync(Compensate, decorateLog: log => new CorruptibleChangeLog(log)));
        Assert.Contains("'items'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Compensate", error.Message, StringComparison.Ordinal);

        await using var engine = await TestEngine.StartAsync(decorateLog: log => new CorruptibleChangeLog(log));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await engine.Manager.WriteAsync(Items.Entity("a"), WriteOptions.Compensate));
        await Assert.ThrowsAsync<ArgumentException>(async () => await engine.Manager.WriteAsync(Items.Entity("a"), new WriteOptions { OnReplicaRejection = (ReplicaRejectionPolicy)7 }));
        Assert.Empty(await engine.Manager.GetCompensationsAsync());
    }

    internal static async Task AssertRevisionEverywhereAsync(TestEngine engine, string id, int revision)
    {
        var source = await engine.Source.ReadAsync(Items.Key(id), CancellationToken.None);
        Assert.NotNull(source);
        Assert.Contains($"\"rev\":{revision}}}", source.Entity.DocumentText, StringComparison.Ordinal);
        // Every replica records the source's version and hash and really holds the matching projection.
        await engine.AssertReplicasMatchSourceAsync(Items.Key(id));
    }

    internal static async Task AssertDeepCheckCleanAsync(TestEngine engine)
    {
        var report = await engine.Services.GetRequiredService<IConsistencyChecker>().CheckAsync(Items.Collection, new ConsistencyCheckOptions { Deep = true });
        Assert.True(report.IsConsistent, string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
    }
}
