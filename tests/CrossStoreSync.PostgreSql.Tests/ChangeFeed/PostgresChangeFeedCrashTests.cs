using System.Buffers.Binary;
using System.Globalization;
using CrossStoreSync.Hashing;
using Microsoft.Data.Sqlite;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Tests;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.ChangeFeed;

/// <summary>Kills a real process running the feed with SIGKILL mid-stream, restarts it, and checks every row change arrived exactly once.</summary>
public sealed class PostgresChangeFeedCrashTests(CdcDatabaseFixture fixture) : IClassFixture<CdcDatabaseFixture>, IDisposable
{
    private const int Rounds = 12;
    private const int InsertsPerRound = 100;
    private readonly TestDatabase _db = fixture.Database;
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_feed_killed_twice_inside_large_transactions_writes_every_row_change_exactly_once()
    {
        var table = Cdc.UniqueName("crash");
        var slot = Cdc.UniqueName("slot");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id int PRIMARY KEY, rev int NOT NULL, payload text NOT NULL)");
        try
        {
            // Each round is one transaction of ~100 inserts, an update of every third row (up to ~400 rows) and a
            // delete: several batches of 50 each. rev counts a row's changes, so the log must show it strictly rising.
            async Task WorkloadAsync()
            {
                for (var round = 0; round < Rounds; round++)
                {
                    var first = round * InsertsPerRound;
                    await _db.CommitAsync(
                        string.Create(CultureInfo.InvariantCulture, $"INSERT INTO {table} SELECT g, 1, repeat('x', 64) FROM generate_series({first}, {first + InsertsPerRound - 1}) g"),
                        string.Create(CultureInfo.InvariantCulture, $"UPDATE {table} SET rev = rev + 1 WHERE id % 3 = {round % 3}"),
                        string.Create(CultureInfo.InvariantCulture, $"DELETE FROM {table} WHERE id = {first + 7}"));
                }
            }

            // The first start creates the slot; the workload begins once it exists and runs while the feed is killed.
            Task? workload = null;
            foreach (var killAfter in new[] { Random.Shared.Next(200, 1200), Random.Shared.Next(200, 1200) })
            {
                using var child = ChildProcess.Start("cdc", _dir.Path, _db.ConnectionString, table, slot);
                await child.ReadUntilAsync(l => l == "READY");
                workload ??= Task.Run(WorkloadAsync);
                await child.ReadUntilAsync(l => l.StartsWith("WRITTEN ", StringComparison.Ordinal) && int.Parse(l[8..], CultureInfo.InvariantCulture) >= killAfter);
                child.KillHard();
            }

            await workload!;
            await using var connection = await _db.OpenAsync();
            var until = await _db.CommitAsync("SELECT 1");
            using (var child = ChildProcess.Start("cdc", _dir.Path, _db.ConnectionString, table, slot, until.ToString()))
            {
                Assert.Equal("Synced", await child.ReadUntilAsync(l => !l.StartsWith("WRITTEN ", StringComparison.Ordinal) && l != "READY"));
                Assert.Equal(0, await child.WaitForExitAsync(Cdc.Wait));
            }

            var expected = new Dictionary<string, int>(StringComparer.Ordinal);
            await using (var command = new Npgsql.NpgsqlCommand($"SELECT id, rev FROM {table}", connection))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    expected[reader.GetInt32(0).ToString(CultureInfo.InvariantCulture)] = reader.GetInt32(1);
                }
            }

            await using var engine = await TestEngine.StartAsync(b => b.UseSqlite(o => o.DirectoryPath = _dir.Path));
            // A record appended with the source write keeps no payload (the documents row is the payload), but it
            // keeps the content hash of what was written: map each hash back to the rev it encodes.
            var hashes = new Dictionary<UInt128, (string Id, int Rev)>();
            foreach (var id in expected.Keys.Concat(Enumerable.Range(0, Rounds).Select(r => (r * InsertsPerRound + 7).ToString(CultureInfo.InvariantCulture))))
            {
                for (var rev = 1; rev <= Rounds + 1; rev++)
                {
                    hashes[EntityEncoding.ComputeContentHash(MapLikeTheCrashHost(int.Parse(id, CultureInfo.InvariantCulture), rev))] = (id, rev);
                }
            }

            var entries = new List<(string Id, ChangeKind Kind, int Rev)>();
            await using (var sqlite = new SqliteConnection($"Data Source={Path.Combine(_dir.Path, "source.db")};Mode=ReadOnly"))
            {
                await sqlite.OpenAsync();
                await using var read = sqlite.CreateCommand();
                read.CommandText = "SELECT id, kind, hash FROM log_entries WHERE collection = 'items' ORDER BY lsn";
                await using var rows = await read.ExecuteReaderAsync();
                while (await rows.ReadAsync())
                {
                    var kind = (ChangeKind)rows.GetInt32(1);
                    var rev = 0;
                    if (kind == ChangeKind.Upsert)
                    {
                        var hash = BinaryPrimitives.ReadUInt128BigEndian((byte[])rows[2]);
                        Assert.True(hashes.TryGetValue(hash, out var known) && known.Id == rows.GetString(0), $"Log entry for {rows.GetString(0)} holds content no row version had.");
                        rev = known.Rev;
                    }

                    entries.Add((rows.GetString(0), kind, rev));
                }
            }

            // Exactly once: per key, the revs written rise strictly (a batch written twice would repeat one), a
            // deleted row has one delete and nothing after it, and the last state is the table's.
            var lastRev = new Dictionary<string, int>(StringComparer.Ordinal);
            var deleted = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (id, kind, rev) in entries)
            {
                Assert.DoesNotContain(id, deleted);
                if (kind == ChangeKind.Delete)
                {
                    deleted.Add(id);
                    continue;
                }

                Assert.True(rev > lastRev.GetValueOrDefault(id), $"Key {id}: rev {rev} written after rev {lastRev.GetValueOrDefault(id)} (a duplicate or a regression).");
                lastRev[id] = rev;
            }

            Assert.Equal(Rounds, deleted.Count);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), lastRev.Keys.Except(deleted).Order(StringComparer.Ordinal));
            foreach (var (id, rev) in expected)
            {
                Assert.Equal(rev, lastRev[id]);
            }

            var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
            Assert.Equal(expected.Count, await docs.CountAsync("items", CancellationToken.None));
            var checker = engine.Services.GetRequiredService<CrossStoreSync.Consistency.IConsistencyChecker>();
            var report = await checker.CheckAsync("items", new CrossStoreSync.Consistency.ConsistencyCheckOptions { Deep = true });
            Assert.True(report.IsConsistent);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    /// <summary>The entity CdcMode's mapping builds for a row (id, rev): the document is the row as JSON.</summary>
    private static SyncEntity MapLikeTheCrashHost(int id, int rev) => SyncEntity.FromJson(
        new EntityKey("items", id.ToString(CultureInfo.InvariantCulture)),
        string.Create(CultureInfo.InvariantCulture, $"{{\"id\":{id},\"rev\":{rev},\"payload\":\"{new string('x', 64)}\"}}"),
        new float[] { id % 7 + 1, rev, 1, 0 },
        [new SyncEdge("NEXT", new EntityKey("items", (id + 1).ToString(CultureInfo.InvariantCulture)))]);
}
