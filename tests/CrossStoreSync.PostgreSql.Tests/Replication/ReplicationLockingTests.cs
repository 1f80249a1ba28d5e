using System.Diagnostics;
using System.Text;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.Replication;

/// <summary>
/// A replicated batch and a local write to the same key from another connection serialize on the key's row: whichever
/// comes second sees the first one's result, so nothing is overwritten without a decision.
/// </summary>
public sealed class ReplicationLockingTests : TwoNodes
{
    [Fact]
    public async Task A_batch_waits_for_a_local_write_in_flight_on_a_stored_key_and_decides_against_its_result()
    {
        await using var b = await StartNode(2);
        var before = await b.Manager.WriteAsync(Item("x", "b's first"));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var local = EntityChange.Upsert(Item("x", "in flight"), new HlcTimestamp(now + 10, 0, 2));

        // The received state has seen B's first write but not the one in flight: it supersedes what B held when the
        // batch started and is concurrent with what B holds when it commits.
        var received = EntityChange.Upsert(Item("x", "from a"), new HlcTimestamp(now + 20, 0, 1));
        var state = new ReplicatedState(1, received, VersionVector.Of(before.Version).With(received.Version));

        var result = await ApplyWhileALocalWriteIsInFlightAsync(b, local, state);

        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal((ConflictResolutionKind.TookRemote, local.Version, received.Version), (conflict.Resolution, conflict.Loser.Version, conflict.Winner));
        Assert.Equal("""{"text":"in flight"}""", Encoding.UTF8.GetString(conflict.Loser.Entity!.Document.Span));
        var stored = await StateOf(b, "x");
        Assert.Equal(received.Version, stored.Change.Version);
        Assert.True(stored.History.Covers(local.Version), $"history {stored.History} must cover the local write {local.Version}");
    }

    [Fact]
    public async Task A_batch_that_meets_a_local_insert_of_a_new_key_decides_again_against_it()
    {
        await using var b = await StartNode(2);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var local = EntityChange.Upsert(Item("n", "inserted here"), new HlcTimestamp(now + 10, 0, 2));
        var received = EntityChange.Upsert(Item("n", "from a"), new HlcTimestamp(now + 20, 0, 1));

        // The batch finds no row (the insert is not committed: nothing to lock) and waits when it inserts its own.
        var result = await ApplyWhileALocalWriteIsInFlightAsync(b, local, new ReplicatedState(1, received, VersionVector.Of(received.Version)));

        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal((local.Version, received.Version), (conflict.Loser.Version, conflict.Winner));
        var stored = await StateOf(b, "n");
        Assert.Equal(received.Version, stored.Change.Version);
        Assert.True(stored.History.Covers(local.Version), $"history {stored.History} must cover the local write {local.Version}");
        Assert.Equal(1, result.Written);
    }

    [Fact]
    public async Task A_local_write_waits_for_a_batch_that_holds_its_key_and_then_supersedes_what_it_wrote()
    {
        await using var b = await StartNode(2);
        var first = await b.Manager.WriteAsync(Item("x", "b's first"));
        var received = EntityChange.Upsert(Item("x", "from a"), new HlcTimestamp(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 20, 0, 1));
        Task<SyncTicket>? localWrite = null;

        // The resolver runs inside the batch's transaction, after its rows are locked: a local write started there
        // must wait for the batch to commit.
        var resolver = new CallbackResolver(() =>
        {
            localWrite = Task.Run(async () => await b.Manager.WriteAsync(Item("x", "written during the batch")));
            WaitUntilBlockedAsync(DatabaseB, localWrite).GetAwaiter().GetResult();
        });
        var result = await WriterOf(b).ApplyAsync(new ReplicationBatch(1, [new ReplicatedState(1, received, VersionVector.Of(received.Version))]) { Resolvers = _ => resolver });
        Assert.Equal(ConflictResolutionKind.TookRemote, Assert.Single(result.Conflicts).Resolution);

        var ticket = await localWrite!;
        var stored = await StateOf(b, "x");
        Assert.Equal(ticket.Version, stored.Change.Version);
        Assert.True(stored.Change.Version > received.Version);
        Assert.True(stored.History.Covers(received.Version) && stored.History.Covers(first.Version), $"history {stored.History}");
        Assert.Null(stored.ReceivedFrom);
    }

    /// <summary>
    /// Holds <paramref name="local"/> written but uncommitted in a transaction of its own (the document part of a local
    /// write, as the log's write path runs it before it appends and commits), applies <paramref name="state"/> once the batch is seen waiting for that transaction, then
    /// commits the local write and returns the batch's result.
    /// </summary>
    private async Task<ReplicationWriteResult> ApplyWhileALocalWriteIsInFlightAsync(EngineHost node, EntityChange local, ReplicatedState state)
    {
        await using var connection = await DatabaseB.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var documents = node.Services.GetRequiredService<PostgresDocumentStore>();
        await documents.ApplyLocalWithinAsync(connection, transaction, [local], _ => throw new InvalidOperationException("Nothing newer is stored: no restamp."), CancellationToken.None);

        var applying = WriterOf(node).ApplyAsync(new ReplicationBatch(1, [state])).AsTask();
        await WaitUntilBlockedAsync(DatabaseB, applying, connection.ProcessID);
        await transaction.CommitAsync();
        return await applying;
    }

    /// <summary>
    /// Waits until the database reports a backend waiting for a lock (held by <paramref name="blocker"/> when given).
    /// This waits for the lock wait itself, observed in <c>pg_stat_activity</c>, not for time to pass; it fails when
    /// <paramref name="operation"/> completes first (it never waited) or after a minute.
    /// </summary>
    private static async Task WaitUntilBlockedAsync(TestDatabase database, Task operation, int? blocker = null)
    {
        await using var connection = await database.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ($1::int IS NULL AND cardinality(pg_blocking_pids(pid)) > 0 OR $1 = ANY(pg_blocking_pids(pid)))",
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)blocker ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        var deadline = Stopwatch.StartNew();
        while ((long)(await command.ExecuteScalarAsync())! == 0)
        {
            if (operation.IsCompleted)
            {
                await operation;
                Assert.Fail("The operation completed without waiting for the row lock.");
            }

            Assert.True(deadline.Elapsed < Wait, "No backend waited for the row lock within a minute.");
            await Task.Delay(10);
        }
    }

    private sealed class CallbackResolver(Action onConflict) : IConflictResolver
    {
        public ConflictResolution Resolve(ConflictingState older, ConflictingState newer)
        {
            onConflict();
            return ConflictResolution.KeepNewer;
        }
    }
}
