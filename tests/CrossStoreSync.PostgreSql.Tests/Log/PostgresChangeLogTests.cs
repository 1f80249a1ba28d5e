using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Log;
using CrossStoreSync.PostgreSql.Tests.Support;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.Log;

public sealed class PostgresChangeLogTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private NpgsqlDataSource _dataSource = null!;
    private PostgresChangeLog _log = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresServer.CreateDatabaseAsync("cslog");
        _dataSource = NpgsqlDataSource.Create(_database.ConnectionString);
        _log = new PostgresChangeLog(_dataSource, new PostgresChangeLogOptions { Partitions = 4 });
        await _log.InitializeAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        await _database.DisposeAsync();
    }

    private static EntityChange Upsert(string id, long version, string text = "x") =>
        EntityChange.Upsert(new SyncEntity(new EntityKey("items", id), Encoding.UTF8.GetBytes($$"""{"t":"{{text}}"}"""), new float[] { 1, 2, 3, 4 }), new HlcTimestamp(version));

    [Fact]
    public async Task Appends_get_dense_numbers_and_round_trip_with_their_content()
    {
        var first = await _log.AppendAsync([Upsert("a", 10), Upsert("b", 11)], LogEntryState.Committed, CancellationToken.None);
        var second = await _log.AppendAsync([EntityChange.Delete(new EntityKey("items", "a"), new HlcTimestamp(12))], LogEntryState.Committed, CancellationToken.None);
        Assert.Equal(new LsnRange(1, 2), first);
        Assert.Equal(new LsnRange(3, 3), second);
        Assert.Equal(3, await _log.GetLastLsnAsync(CancellationToken.None));
        Assert.Equal(12, (await _log.GetMaxVersionAsync(CancellationToken.None)).Value);

        var records = new List<LogRecord>();
        var read = await _log.ReadCommittedAsync(0, 10, records, CancellationToken.None);
        Assert.Equal(3, read.ReadThrough);
        Assert.Equal([1L, 2, 3], records.Select(r => r.Lsn));
        Assert.Equal("""{"t":"x"}""", Encoding.UTF8.GetString(records[0].Change.Entity!.Document.Span));
        Assert.Equal(new float[] { 1, 2, 3, 4 }, records[0].Change.Entity!.Vector.ToArray());
        Assert.Equal(Upsert("a", 10).ContentHash, records[0].Change.ContentHash);
        Assert.Equal(ChangeKind.Delete, records[2].Change.Kind);

        var last = await _log.GetLastEntryForKeyAsync(new EntityKey("items", "a"), CancellationToken.None);
        Assert.Equal(3, last!.Lsn);
    }

    [Fact]
    public async Task Readers_stop_before_a_pending_entry_and_skip_aborted_ones()
    {
        await _log.AppendAsync([Upsert("a", 1)], LogEntryState.Committed, CancellationToken.None);
        var pending = await _log.AppendAsync([Upsert("b", 2)], LogEntryState.Pending, CancellationToken.None);
        await _log.AppendAsync([Upsert("c", 3)], LogEntryState.Committed, CancellationToken.None);

        var records = new List<LogRecord>();
        var read = await _log.ReadCommittedAsync(0, 10, records, CancellationToken.None);
        Assert.True(read.BlockedByPending);
        Assert.Equal(1, read.ReadThrough);
        Assert.Single(await _log.ReadPendingAsync(CancellationToken.None));

        await _log.SetStateAsync(pending, LogEntryState.Aborted, CancellationToken.None);
        records.Clear();
        read = await _log.ReadCommittedAsync(1, 10, records, CancellationToken.None);
        Assert.False(read.BlockedByPending);
        Assert.Equal(3, read.ReadThrough);
        Assert.Equal(["c"], records.Select(r => r.Change.Key.Id));
    }

    [Fact]
    public async Task Concurrent_appends_commit_in_sequence_order_so_a_tailing_reader_never_steps_over_one()
    {
        // The outbox property readers rely on: whatever a reader sees is a gap-free prefix of the log. With numbers from
        // a sequence, a transaction holding 9 can commit after one holding 10 and a reader that saw 10 loses 9.
        const int writers = 8, batches = 60, perBatch = 5;
        using var done = new CancellationTokenSource();
        var seen = new List<long>();
        var reader = Task.Run(async () =>
        {
            var cursor = 0L;
            var buffer = new List<LogRecord>();
            while (true)
            {
                var finished = done.IsCancellationRequested;
                buffer.Clear();
                var read = await _log.ReadCommittedAsync(cursor, 100, buffer, CancellationToken.None);
                seen.AddRange(buffer.Select(r => r.Lsn));
                cursor = read.ReadThrough;
                if (finished && buffer.Count == 0)
                {
                    return cursor;
                }
            }
        });

        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var b = 0; b < batches; b++)
            {
                var changes = Enumerable.Range(0, perBatch).Select(i => Upsert($"w{w}-{b}-{i}", 1 + (w * 10_000) + (b * 10) + i)).ToArray();
                await _log.AppendAsync(changes, LogEntryState.Committed, CancellationToken.None);
            }
        })));
        await done.CancelAsync();
        var final = await reader.WaitAsync(TimeSpan.FromSeconds(60));

        const long total = writers * batches * perBatch;
        Assert.Equal(total, final);
        Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), seen);
    }

    [Fact]
    public async Task A_record_altered_in_the_database_is_reported_not_dispatched()
    {
        await _log.AppendAsync([Upsert("a", 1), Upsert("b", 2)], LogEntryState.Committed, CancellationToken.None);
        await _database.ExecuteAsync("UPDATE crossstoresync.log_entries SET version = 99 WHERE lsn = 2");

        var records = new List<LogRecord>();
        var error = await Assert.ThrowsAsync<ChangeLogCorruptedException>(async () => await _log.ReadCommittedAsync(0, 10, records, CancellationToken.None));
        Assert.Equal(2, error.Lsn);
        Assert.Equal("checksum", error.Field);
    }

    [Fact]
    public async Task Cursors_move_only_forward_and_checkpoints_list_by_exact_prefix()
    {
        await _log.SetCursorAsync("vectors", 10, CancellationToken.None);
        await _log.SetCursorAsync("vectors", 5, CancellationToken.None);
        Assert.Equal(10, await _log.GetCursorAsync("vectors", CancellationToken.None));
        Assert.Equal(0, await _log.GetCursorAsync("graph", CancellationToken.None));

        await _log.SetCheckpointAsync("migration/a%b/unit/0001", "1", CancellationToken.None);
        await _log.SetCheckpointAsync("migration/a%b/unit/0000", "0", CancellationToken.None);
        await _log.SetCheckpointAsync("migration/axb/unit/0000", "x", CancellationToken.None);
        Assert.Equal(["migration/a%b/unit/0000", "migration/a%b/unit/0001"], await _log.ListCheckpointsAsync("migration/a%b/", CancellationToken.None));
        Assert.Equal("1", await _log.GetCheckpointAsync("migration/a%b/unit/0001", CancellationToken.None));
        await _log.SetCheckpointAsync("migration/a%b/unit/0001", null, CancellationToken.None);
        Assert.Null(await _log.GetCheckpointAsync("migration/a%b/unit/0001", CancellationToken.None));
    }

    [Fact]
    public async Task Dead_letters_are_recorded_listed_counted_and_removed()
    {
        var range = await _log.AppendAsync([Upsert("a", 1)], LogEntryState.Committed, CancellationToken.None);
        var records = new List<LogRecord>();
        await _log.ReadCommittedAsync(0, 10, records, CancellationToken.None);
        var at = new DateTimeOffset(2026, 11, 22, 5, 0, 0, TimeSpan.Zero);
        await _log.AddDeadLetterAsync("vectors", records[0], "rejected: too big", at, CancellationToken.None);

        var letter = Assert.Single(await _log.ListDeadLettersAsync(null, 10, CancellationToken.None));
        Assert.Equal(("vectors", 1L, "a", "rejected: too big", at), (letter.Store, letter.Lsn, letter.Key.Id, letter.Reason, letter.CreatedAt));
        Assert.Empty(await _log.ListDeadLettersAsync("graph", 10, CancellationToken.None));
        Assert.Equal(letter, await _log.GetDeadLetterAsync("vectors", new EntityKey("items", "a"), CancellationToken.None));
        Assert.Equal(1, await _log.CountDeadLettersAsync(range, CancellationToken.None));
        Assert.True(await _log.RemoveDeadLetterAsync(letter.Id, CancellationToken.None));
        Assert.False(await _log.RemoveDeadLetterAsync(letter.Id, CancellationToken.None));
    }

    [Fact]
    public async Task A_log_created_with_another_partition_count_refuses_to_start_with_both_values()
    {
        var other = new PostgresChangeLog(_dataSource, new PostgresChangeLogOptions { Partitions = 8 });
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await other.InitializeAsync(CancellationToken.None));
        Assert.Contains("created with 4 partitions", error.Message);
        Assert.Contains("Partitions is 8", error.Message);
    }

    [Fact]
    public void Bad_options_are_refused_naming_the_value()
    {
        Assert.Contains("'Bad-Schema'", Assert.Throws<ArgumentException>(() => new PostgresChangeLog(_dataSource, new PostgresChangeLogOptions { Schema = "Bad-Schema" })).Message);
        Assert.Contains("is 0", Assert.Throws<ArgumentOutOfRangeException>(() => new PostgresChangeLog(_dataSource, new PostgresChangeLogOptions { Partitions = 0 })).Message);
    }

    [Fact]
    public async Task Workers_share_partitions_fairly_and_take_over_expired_leases()
    {
        var lease = TimeSpan.FromMinutes(1);
        var a = await _log.AcquirePartitionsAsync("vectors", "worker-a", lease, CancellationToken.None);
        Assert.Equal([0, 1, 2, 3], a.Partitions);

        // B joins: it gets nothing until A gives back what exceeds its new fair share.
        var b = await _log.AcquirePartitionsAsync("vectors", "worker-b", lease, CancellationToken.None);
        Assert.Empty(b.Partitions);
        Assert.Equal((2, 2), (b.FairShare, b.LiveWorkers));
        a = await _log.AcquirePartitionsAsync("vectors", "worker-a", lease, CancellationToken.None);
        Assert.Equal(2, a.FairShare);
        await _log.SavePartitionCursorsAsync("vectors", "worker-a", [2, 3], [7, 8], CancellationToken.None);
        await _log.ReleasePartitionsAsync("vectors", "worker-a", [2, 3], CancellationToken.None);
        b = await _log.AcquirePartitionsAsync("vectors", "worker-b", lease, CancellationToken.None);
        Assert.Equal([2, 3], b.Partitions);
        Assert.Equal([7L, 8], b.Cursors);

        // A dies: once its lease and liveness expire (moved into the past here rather than waited for), B takes all.
        await _database.ExecuteAsync("UPDATE crossstoresync.partition_cursors SET lease_until = now() - interval '1 second' WHERE owner = 'worker-a'");
        await _database.ExecuteAsync("UPDATE crossstoresync.workers SET seen_until = now() - interval '1 second' WHERE worker = 'worker-a'");
        b = await _log.AcquirePartitionsAsync("vectors", "worker-b", lease, CancellationToken.None);
        Assert.Equal([0, 1, 2, 3], b.Partitions);

        // A comes back late: its cursor saves are fenced off and reported as lost.
        var lost = await _log.SavePartitionCursorsAsync("vectors", "worker-a", [0, 1], [100, 100], CancellationToken.None);
        Assert.Equal([0, 1], lost);
        var cursors = await _log.GetPartitionCursorsAsync("vectors", CancellationToken.None);
        Assert.Equal(new long[] { 0, 0, 7, 8 }, cursors);
        Assert.Equal(0, await _log.GetCursorAsync("vectors", CancellationToken.None));
    }

    [Fact]
    public async Task A_partitioned_read_returns_only_the_given_partitions_each_after_its_own_cursor()
    {
        var changes = Enumerable.Range(0, 40).Select(i => Upsert($"k{i}", i + 1)).ToArray();
        await _log.AppendAsync(changes, LogEntryState.Committed, CancellationToken.None);
        var partitionOf = changes.ToDictionary(c => c.Key.Id, c => PostgresChangeLog.PartitionOf(c.Key, 4));

        var records = new List<LogRecord>();
        var read = await _log.ReadCommittedAsync([1, 3], [0, 20], 100, records, CancellationToken.None);
        Assert.Equal(40, read.ReadThrough);
        var expected = Enumerable.Range(1, 40).Where(lsn => partitionOf[$"k{lsn - 1}"] == 1 || (partitionOf[$"k{lsn - 1}"] == 3 && lsn > 20)).Select(l => (long)l);
        Assert.Equal(expected, records.Select(r => r.Lsn));

        // A full page: every given partition may advance only to the last entry returned.
        records.Clear();
        read = await _log.ReadCommittedAsync([0, 1, 2, 3], [0, 0, 0, 0], 10, records, CancellationToken.None);
        Assert.Equal(10, read.ReadThrough);
        Assert.Equal(Enumerable.Range(1, 10).Select(l => (long)l), records.Select(r => r.Lsn));
    }
}
