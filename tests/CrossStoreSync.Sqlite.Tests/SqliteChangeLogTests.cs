using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Tests;

public sealed class SqliteChangeLogTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private SqliteChangeLog _log = null!;

    public async Task InitializeAsync()
    {
        _log = new SqliteChangeLog(_dir.File("source.db"));
        await _log.InitializeAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _log.DisposeAsync();
        _dir.Dispose();
    }

    private static EntityChange Change(string id, long version, string text = "x") =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), $"{{\"t\":\"{text}\"}}", new float[] { 1, 2 }, [new SyncEdge("E", new EntityKey("items", "t"))]), new HlcTimestamp(version));

    /// <summary>Reopens the log so reads come from disk, not from the in-memory tail of this process's appends.</summary>
    private async Task Reopen()
    {
        await _log.DisposeAsync();
        SqliteConnection.ClearAllPools();
        _log = new SqliteChangeLog(_dir.File("source.db"));
        await _log.InitializeAsync(CancellationToken.None);
    }

    private async Task<(List<LogRecord> Records, LogReadResult Result)> ReadAfter(long lsn, int max = 100)
    {
        var records = new List<LogRecord>();
        var result = await _log.ReadCommittedAsync(lsn, max, records, CancellationToken.None);
        return (records, result);
    }

    [Fact]
    public async Task Checkpoints_are_durable_replaced_listed_by_prefix_and_deleted()
    {
        await _log.SetCheckpointAsync("migration/a/header", "{\"v\":1}", CancellationToken.None);
        await _log.SetCheckpointAsync("migration/a/w0", "one", CancellationToken.None);
        await _log.SetCheckpointAsync("migration/a/w0", "two", CancellationToken.None);
        await _log.SetCheckpointAsync("migration/b%_/w0", "other", CancellationToken.None);
        await _log.SetCheckpointAsync("other", "x", CancellationToken.None);

        await Reopen();
        Assert.Equal("two", await _log.GetCheckpointAsync("migration/a/w0", CancellationToken.None));
        Assert.Equal(["migration/a/header", "migration/a/w0"], await _log.ListCheckpointsAsync("migration/a/", CancellationToken.None));
        Assert.Equal(["migration/b%_/w0"], await _log.ListCheckpointsAsync("migration/b%_", CancellationToken.None));

        await _log.SetCheckpointAsync("migration/a/w0", null, CancellationToken.None);
        Assert.Null(await _log.GetCheckpointAsync("migration/a/w0", CancellationToken.None));
        Assert.Null(await _log.GetCheckpointAsync("never", CancellationToken.None));
    }

    [Fact]
    public async Task Appended_changes_read_back_identically_in_lsn_order()
    {
        var changes = Enumerable.Range(1, 20).Select(i => Change("k" + i, i)).ToArray();
        var range = await _log.AppendAsync(changes, LogEntryState.Committed, CancellationToken.None);
        Assert.Equal(new LsnRange(1, 20), range);

        await Reopen();
        var (records, result) = await ReadAfter(0);
        Assert.Equal(20, result.ReadThrough);
        Assert.False(result.BlockedByPending);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), records.Select(r => r.Lsn));
        for (var i = 0; i < changes.Length; i++)
        {
            Assert.Equal(changes[i].Key, records[i].Change.Key);
            Assert.Equal(changes[i].Version, records[i].Change.Version);
            Assert.Equal(changes[i].ContentHash, records[i].Change.ContentHash);
            Assert.Equal(changes[i].Entity!.Document.ToArray(), records[i].Change.Entity!.Document.ToArray());
        }
    }

    [Fact]
    public async Task Records_committed_with_the_source_read_back_as_the_state_the_source_holds()
    {
        var first = Change("a", 1, "one");
        var second = Change("a", 2, "two");
        await _log.AppendAndApplyAsync([first], CancellationToken.None);
        await _log.AppendAndApplyAsync([second], CancellationToken.None);

        // From memory: the changes as written.
        var (records, _) = await ReadAfter(0);
        Assert.Equal([first.Version, second.Version], records.Select(r => r.Change.Version));

        // From disk: both records carry the source's current state, never an older one.
        await Reopen();
        (records, _) = await ReadAfter(0);
        Assert.Equal(2, records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal(second.Version, r.Change.Version);
            Assert.Equal(second.ContentHash, r.Change.ContentHash);
            Assert.Equal("{\"t\":\"two\"}", r.Change.Entity!.DocumentText);
        });

        await _log.AppendAndApplyAsync([EntityChange.Delete(first.Key, new HlcTimestamp(3))], CancellationToken.None);
        await Reopen();
        (records, _) = await ReadAfter(0);
        Assert.All(records, r => Assert.Equal((ChangeKind.Delete, new HlcTimestamp(3)), (r.Change.Kind, r.Change.Version)));
    }

    [Fact]
    public async Task Readers_stop_at_a_pending_entry_and_skip_aborted_ones()
    {
        await _log.AppendAsync([Change("a", 1)], LogEntryState.Committed, CancellationToken.None);
        var pending = await _log.AppendAsync([Change("b", 2)], LogEntryState.Pending, CancellationToken.None);
        await _log.AppendAsync([Change("c", 3)], LogEntryState.Committed, CancellationToken.None);

        var (records, result) = await ReadAfter(0);
        Assert.Equal(["a"], records.Select(r => r.Change.Key.Id));
        Assert.Equal(1, result.ReadThrough);
        Assert.True(result.BlockedByPending);

        await _log.SetStateAsync(pending, LogEntryState.Aborted, CancellationToken.None);
        (records, result) = await ReadAfter(1);
        Assert.Equal(["c"], records.Select(r => r.Change.Key.Id));
        Assert.Equal(3, result.ReadThrough);

        // A decided entry never changes state again.
        await _log.SetStateAsync(pending, LogEntryState.Committed, CancellationToken.None);
        (records, _) = await ReadAfter(0);
        Assert.Equal(["a", "c"], records.Select(r => r.Change.Key.Id));
    }

    [Fact]
    public async Task A_corrupted_record_is_reported_with_its_lsn_and_never_skipped()
    {
        await _log.AppendAsync([Change("a", 1), Change("b", 2), Change("c", 3)], LogEntryState.Committed, CancellationToken.None);
        await using (var connection = new SqliteConnection($"Data Source={_log.DatabasePath}"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE log_entries SET payload = CAST(REPLACE(CAST(payload AS TEXT), 't', 'T') AS BLOB) WHERE lsn = 2";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        await Reopen();
        var error = await Assert.ThrowsAsync<ChangeLogCorruptedException>(async () => await ReadAfter(0));
        Assert.Equal(2, error.Lsn);
        Assert.Equal("checksum", error.Field);
        Assert.Contains("LSN 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("items/b", error.Message, StringComparison.Ordinal);

        // Reading from after the bad record works; reading across it keeps failing.
        var (records, _) = await ReadAfter(2);
        Assert.Equal(["c"], records.Select(r => r.Change.Key.Id));
        await Assert.ThrowsAsync<ChangeLogCorruptedException>(async () => await ReadAfter(1));
    }

    [Fact]
    public async Task A_truncated_payload_with_a_matching_checksum_is_reported_as_corrupted()
    {
        await _log.AppendAsync([Change("a", 1)], LogEntryState.Committed, CancellationToken.None);
        var truncated = new byte[10];
        var checksum = unchecked((long)CrossStoreSync.Log.LogRecordChecksum.Compute(1, ChangeKind.Upsert, 1, new byte[16], "items", "a", truncated));
        await using (var connection = new SqliteConnection($"Data Source={_log.DatabasePath}"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE log_entries SET payload = $p, hash = zeroblob(16), checksum = $c WHERE lsn = 1";
            command.Parameters.AddWithValue("$p", truncated);
            command.Parameters.AddWithValue("$c", checksum);
            await command.ExecuteNonQueryAsync();
        }

        await Reopen();
        var error = await Assert.ThrowsAsync<ChangeLogCorruptedException>(async () => await ReadAfter(0));
        Assert.Equal("payload", error.Field);
    }

    [Fact]
    public async Task Concurrent_appends_share_group_commits_and_all_become_durable()
    {
        const int writers = 400;
        var before = _log.Database.CommitCount;
        var ranges = await Task.WhenAll(Enumerable.Range(0, writers).Select(i => _log.AppendAsync([Change("w" + i, i + 1)], LogEntryState.Committed, CancellationToken.None).AsTask()));
        var commits = _log.Database.CommitCount - before;

        Assert.Equal(writers, ranges.Select(r => r.First).Distinct().Count());
        Assert.True(commits < writers, $"{writers} appends took {commits} commits; group commit should share transactions.");

        // Reopen: everything acknowledged is there, and numbering continues after the last LSN.
        await _log.DisposeAsync();
        _log = new SqliteChangeLog(_dir.File("source.db"));
        await _log.InitializeAsync(CancellationToken.None);
        var (records, _) = await ReadAfter(0, 1000);
        Assert.Equal(writers, records.Count);
        var next = await _log.AppendAsync([Change("after", 10_000)], LogEntryState.Committed, CancellationToken.None);
        Assert.Equal(writers + 1, next.First);
    }

    [Fact]
    public async Task Cursors_persist_and_only_move_forward()
    {
        await _log.SetCursorAsync("vectors", 10, CancellationToken.None);
        await _log.SetCursorAsync("vectors", 7, CancellationToken.None);
        Assert.Equal(10, await _log.GetCursorAsync("vectors", CancellationToken.None));
        Assert.Equal(0, await _log.GetCursorAsync("graph", CancellationToken.None));
    }

    [Fact]
    public async Task Dead_letters_are_recorded_listed_counted_and_removed()
    {
        var range = await _log.AppendAsync([Change("a", 1), Change("b", 2)], LogEntryState.Committed, CancellationToken.None);
        var (records, _) = await ReadAfter(0);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);
        await _log.AddDeadLetterAsync("vectors", records[1], "rejected: bad", at, CancellationToken.None);

        var letters = await _log.ListDeadLettersAsync("vectors", 10, CancellationToken.None);
        var letter = Assert.Single(letters);
        Assert.Equal(("vectors", 2L, new EntityKey("items", "b"), "rejected: bad", at), (letter.Store, letter.Lsn, letter.Key, letter.Reason, letter.CreatedAt));
        Assert.Empty(await _log.ListDeadLettersAsync("graph", 10, CancellationToken.None));
        Assert.Equal(1, await _log.CountDeadLettersAsync(range, CancellationToken.None));
        Assert.Equal(letter, await _log.GetDeadLetterAsync("vectors", new EntityKey("items", "b"), CancellationToken.None));
        Assert.True(await _log.RemoveDeadLetterAsync(letter.Id, CancellationToken.None));
        Assert.False(await _log.RemoveDeadLetterAsync(letter.Id, CancellationToken.None));
        Assert.Equal(0, await _log.CountDeadLettersAsync(range, CancellationToken.None));
    }

    [Fact]
    public async Task A_rejected_source_write_leaves_neither_the_document_nor_the_log_entry()
    {
        await using (var connection = new SqliteConnection($"Data Source={_log.DatabasePath}"))
        {
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TRIGGER reject_poison BEFORE INSERT ON documents WHEN NEW.id = 'poison' BEGIN SELECT RAISE(ABORT, 'poison is not allowed'); END;";
            await command.ExecuteNonQueryAsync();
        }

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await _log.AppendAndApplyAsync([Change("fine", 1), Change("poison", 1)], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Contains("poison is not allowed", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await _log.GetLastLsnAsync(CancellationToken.None));
        Assert.Null(await _log.Documents.ReadAsync(new EntityKey("items", "fine"), CancellationToken.None));

        var ok = await _log.AppendAndApplyAsync([Change("fine", 1)], CancellationToken.None);
        Assert.Equal(1, ok.First);
        Assert.NotNull(await _log.Documents.ReadAsync(new EntityKey("items", "fine"), CancellationToken.None));
        Assert.Equal(new HlcTimestamp(1), await _log.GetMaxVersionAsync(CancellationToken.None));
        Assert.Equal(LogEntryState.Committed, (await _log.GetLastEntryForKeyAsync(new EntityKey("items", "fine"), CancellationToken.None))!.State);
        Assert.Equal("{\"t\":\"x\"}", Encoding.UTF8.GetString((await _log.Documents.ReadAsync(new EntityKey("items", "fine"), CancellationToken.None))!.Entity.Document.Span));
    }
}
