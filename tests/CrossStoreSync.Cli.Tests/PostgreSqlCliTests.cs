using CrossStoreSync.Cli.Tests.Support;
using CrossStoreSync.PostgreSql.Tests.Support;

namespace CrossStoreSync.Cli.Tests;

/// <summary>
/// The tool against a real PostgreSQL (eng/postgres.sh, or CSS_PG_CONNECTION): the source of truth and its shared
/// outbox log in PostgreSQL, SQLite replicas, drift planted by plain SQL on both sides.
/// </summary>
public sealed class PostgreSqlCliTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private Deployment _app = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresServer.CreateDatabaseAsync("csscli");
        _app = Deployment.PostgreSql(_database.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        _app.Dispose();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Check_finds_SQL_drift_in_PostgreSQL_and_a_replica_and_repair_apply_fixes_it()
    {
        await _app.WriteNotesAsync(300);
        Assert.Equal(0, (await Css.RunAsync(_app.Directory, "check", "--json")).ExitCode);

        // An entity removed from the source of truth behind the library's back, a vector zeroed in the replica.
        Assert.Equal(1, await _database.ExecuteAsync("DELETE FROM crossstoresync.doc_notes WHERE id = 'n-42'"));
        Assert.Equal(1, _app.Sql("vectors.db", "UPDATE vectors SET vector = zeroblob(16) WHERE id = 'n-43'"));

        var check = await Css.RunAsync(_app.Directory, "check", "--deep", "--json");
        Assert.True(check.ExitCode == 1, check.ToString());
        var findings = check.Json().GetProperty("collections").EnumerateArray()
            .SelectMany(c => c.GetProperty("stores").EnumerateArray())
            .SelectMany(s => s.GetProperty("findings").EnumerateArray().Select(f => (s.GetProperty("store").GetString(), f.GetProperty("id").GetString(), f.GetProperty("kind").GetString())))
            .ToArray();
        Assert.Contains(("vectors", "n-42", "orphaned"), findings);
        Assert.Contains(("graph", "n-42", "orphaned"), findings);
        Assert.Contains(("vectors", "n-43", "corrupted"), findings);
        Assert.Equal(3, findings.Length);

        var apply = await Css.RunAsync(_app.Directory, "repair", "--deep", "--apply", "--json");
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.True(apply.Json().GetProperty("consistent").GetBoolean());
        var after = await Css.RunAsync(_app.Directory, "check", "--deep", "--json");
        Assert.True(after.ExitCode == 0, after.ToString());

        // The shared log: partitions and every partition's cursor, all caught up.
        var log = await Css.RunAsync(_app.Directory, "log", "--json");
        Assert.True(log.ExitCode == 0, log.ToString());
        var json = log.Json();
        Assert.Equal(16, json.GetProperty("partitions").GetInt32());
        var head = json.GetProperty("head").GetInt64();
        Assert.True(head > 300);
        Assert.All(json.GetProperty("cursors").EnumerateArray(), c =>
        {
            Assert.Equal(head, c.GetProperty("cursor").GetInt64() + c.GetProperty("lagChanges").GetInt64());
            Assert.Equal(16, c.GetProperty("partitionCursors").GetArrayLength());
        });
        var status = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
    }

    [Fact]
    public async Task Status_reports_a_replica_behind_from_the_partition_cursors_in_PostgreSQL()
    {
        await _app.WriteNotesAsync(40);
        var behind = await _database.ExecuteAsync("UPDATE crossstoresync.partition_cursors SET lsn = 0 WHERE store = 'graph'");
        Assert.True(behind > 0);

        var status = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(status.ExitCode == 1, status.ToString());
        var graph = status.Json().GetProperty("stores").EnumerateArray().Single(s => s.GetProperty("store").GetString() == "graph");
        Assert.Equal(40, graph.GetProperty("lagChanges").GetInt64());
        Assert.Equal("lagging", graph.GetProperty("state").GetString());
        var vectors = status.Json().GetProperty("stores").EnumerateArray().Single(s => s.GetProperty("store").GetString() == "vectors");
        Assert.Equal("in-sync", vectors.GetProperty("state").GetString());
    }
}
