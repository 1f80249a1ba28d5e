using System.Text.Json;
using CrossStoreSync.Cli.Tests.Support;

namespace CrossStoreSync.Cli.Tests;

/// <summary>
/// The tool as an operator runs it: a real process pointed at an application's appsettings.json, against the real
/// SQLite files the application wrote, with drift planted behind the library's back by plain SQL.
/// </summary>
public sealed class SqliteCliTests : IDisposable
{
    private readonly Deployment _app = Deployment.Sqlite();

    [Fact]
    public async Task Check_finds_drift_planted_by_SQL_repair_dry_run_writes_nothing_and_apply_fixes_it()
    {
        await _app.WriteNotesAsync(200);
        var clean = await Css.RunAsync(_app.Directory, "check", "--json");
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.True(clean.Json().GetProperty("consistent").GetBoolean());

        Assert.Equal(1, _app.Sql("vectors.db", "DELETE FROM vectors WHERE id = 'n-7'"));
        Assert.Equal(1, _app.Sql("vectors.db", "UPDATE vectors SET vector = zeroblob(16) WHERE id = 'n-8'"));
        Assert.Equal(1, _app.Sql("graph.db", "UPDATE nodes SET version = version - 1 WHERE id = 'n-10'"));
        Assert.Equal(1, _app.Sql("source.db", "DELETE FROM documents WHERE id = 'n-9'"));

        // Differences found: exit 1, and the JSON names each key and kind.
        var check = await Css.RunAsync(_app.Directory, "check", "--deep", "--json");
        Assert.True(check.ExitCode == 1, check.ToString());
        var findings = Findings(check.Json());
        Assert.Contains(("vectors", "n-7", "missing"), findings);
        Assert.Contains(("vectors", "n-8", "corrupted"), findings);
        Assert.Contains(("graph", "n-10", "stale"), findings);
        Assert.Contains(("vectors", "n-9", "orphaned"), findings);
        Assert.Contains(("graph", "n-9", "orphaned"), findings);
        Assert.Equal(5, findings.Count);

        // Dry run: the repairs are listed (exit 1: there is something to repair) and nothing is written.
        var dryRun = await Css.RunAsync(_app.Directory, "repair", "--deep", "--json");
        Assert.True(dryRun.ExitCode == 1, dryRun.ToString());
        var planned = dryRun.Json().GetProperty("collections").EnumerateArray().SelectMany(c => c.GetProperty("actions").EnumerateArray()).Select(a => (a.GetProperty("id").GetString(), a.GetProperty("action").GetString())).ToArray();
        Assert.Contains(("n-7", "upsert"), planned);
        Assert.Contains(("n-8", "upsert"), planned);
        Assert.Contains(("n-10", "upsert"), planned);
        Assert.Contains(("n-9", "delete"), planned);
        Assert.Equal(1, (await Css.RunAsync(_app.Directory, "check", "--deep", "--json")).ExitCode);

        // Apply: written through the log, waited for, checked again.
        var apply = await Css.RunAsync(_app.Directory, "repair", "--deep", "--apply", "--json");
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var applied = apply.Json();
        Assert.True(applied.GetProperty("consistent").GetBoolean());
        Assert.All(applied.GetProperty("after").EnumerateArray(), r => Assert.True(r.GetProperty("consistent").GetBoolean()));
        Assert.Contains(applied.GetProperty("collections").EnumerateArray(), c => c.GetProperty("outcome").GetString() == "synced");

        var after = await Css.RunAsync(_app.Directory, "check", "--deep", "--json");
        Assert.True(after.ExitCode == 0, after.ToString());
        var status = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
    }

    [Fact]
    public async Task Status_and_dead_letters_report_a_rejected_change_and_replay_clears_it()
    {
        await _app.WriteNotesAsync(20);
        _app.Sql("source.db", """
            INSERT INTO dead_letters (store, lsn, collection, entity_id, kind, version, reason, created_at)
            SELECT 'vectors', lsn, collection, id, 0, version, 'planted: the vector store refused it', 1700000000000 FROM log_entries WHERE id = 'n-3'
            """);

        var status = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(status.ExitCode == 1, status.ToString());
        var vectors = status.Json().GetProperty("stores").EnumerateArray().Single(s => s.GetProperty("store").GetString() == "vectors");
        Assert.Equal(1, vectors.GetProperty("deadLetters").GetInt32());
        Assert.Equal("dead-letters", vectors.GetProperty("state").GetString());
        Assert.False(status.Json().GetProperty("inSync").GetBoolean());

        var list = await Css.RunAsync(_app.Directory, "dead-letters", "list", "--json");
        Assert.True(list.ExitCode == 1, list.ToString());
        var letter = Assert.Single(list.Json().GetProperty("deadLetters").EnumerateArray().ToArray());
        Assert.Equal("n-3", letter.GetProperty("key").GetString());
        var id = letter.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);

        var show = await Css.RunAsync(_app.Directory, "dead-letters", "show", id, "--json");
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Equal("planted: the vector store refused it", show.Json().GetProperty("deadLetter").GetProperty("reason").GetString());

        var key = await Css.RunAsync(_app.Directory, "status", "--key", "notes/n-3", "--json");
        Assert.True(key.ExitCode == 1, key.ToString());
        Assert.Contains(key.Json().GetProperty("stores").EnumerateArray(), s => s.GetProperty("store").GetString() == "vectors" && s.GetProperty("state").GetString() == "deadLettered");

        var replay = await Css.RunAsync(_app.Directory, "dead-letters", "replay", "--json");
        Assert.True(replay.ExitCode == 0, replay.ToString());
        Assert.Equal(1, replay.Json().GetProperty("replayed").GetInt32());
        Assert.Equal("synced", replay.Json().GetProperty("outcome").GetString());

        Assert.Equal(0, (await Css.RunAsync(_app.Directory, "dead-letters", "list", "--json")).ExitCode);
        var statusAfter = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(statusAfter.ExitCode == 0, statusAfter.ToString());
        Assert.Equal(0, (await Css.RunAsync(_app.Directory, "status", "--key", "notes/n-3")).ExitCode);

        var missing = await Css.RunAsync(_app.Directory, "dead-letters", "show", "999999");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plugin_adds_what_configuration_cannot_express_here_the_transform_of_a_re_embedding()
    {
        await _app.WriteNotesAsync(50);
        _app.AddCollection("notes_v2", vectorDimension: 8);
        string[] reEmbed = ["migrate", "reembed-v2", "--target", "vectors", "--collection", "notes", "--target-collection", "notes_v2", "--transform", "embed-v2", "--json"];

        // Without the plugin the transform is unknown; a plugin that is not there is named. Both before anything is written.
        var unknown = await Css.RunAsync(_app.Directory, reEmbed);
        Assert.True(unknown.ExitCode == 2, unknown.ToString());
        Assert.Contains("'embed-v2' is not registered", unknown.Stderr, StringComparison.Ordinal);
        var absent = await Css.RunAsync(_app.Directory, [.. reEmbed, "--plugin", "no-such-plugin.dll"]);
        Assert.True(absent.ExitCode == 2, absent.ToString());
        Assert.Contains("no-such-plugin.dll", absent.Stderr, StringComparison.Ordinal);
        Assert.Equal(0L, _app.Scalar("vectors.db", "SELECT count(*) FROM vectors WHERE collection = 'notes_v2'"));

        // With it: the new collection is filled with the plugin's embeddings and verified.
        var run = await Css.RunAsync(_app.Directory, [.. reEmbed, "--plugin", typeof(TestPlugin.CssPlugin).Assembly.Location]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(run.Json().GetProperty("verified").GetBoolean(), run.ToString());
        Assert.Equal(50L, _app.Scalar("vectors.db", "SELECT count(*) FROM vectors WHERE collection = 'notes_v2' AND deleted = 0"));
        var blob = (byte[])_app.Scalar("vectors.db", "SELECT vector FROM vectors WHERE collection = 'notes_v2' AND id = 'n-3'")!;
        var expected = (await TestPlugin.CssPlugin.EmbedV2(Deployment.Note(3), CancellationToken.None)).Vector.ToArray();
        Assert.Equal(expected, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(blob).ToArray());
        Assert.Equal(new float[] { 3, 2, 2.5f, 2, 7, 6, 6.5f, 6 }, expected);
    }

    [Fact]
    public async Task Migrate_rebuilds_a_wiped_replica_stops_cleanly_on_ctrl_c_and_resumes()
    {
        await _app.WriteNotesAsync(3000);
        Assert.Equal(3000, _app.Sql("graph.db", "DELETE FROM nodes"));
        _app.Sql("graph.db", "DELETE FROM edges");
        Assert.Equal(1, (await Css.RunAsync(_app.Directory, "check", "--json")).ExitCode);

        // A fixed small batch makes the run long enough to interrupt after its first checkpoint.
        using (var first = Css.Start(_app.Directory, null, "migrate", "graph-rebuild", "--target", "graph", "--batch-size", "5", "--workers", "1", "--json"))
        {
            await first.WaitForStderrLineAsync(line => line.Contains("\"phase\":\"backfilling\"", StringComparison.Ordinal) && !line.Contains("\"done\":0,", StringComparison.Ordinal));
            first.Interrupt();
            await first.WaitAsync();
            Assert.True(first.ExitCode == 130, first.ToString());
            Assert.Contains("checkpoints are saved", first.Stderr, StringComparison.Ordinal);
        }

        var listed = await Css.RunAsync(_app.Directory, "migrate", "--json");
        var interrupted = Assert.Single(listed.Json().GetProperty("migrations").EnumerateArray().ToArray());
        Assert.Equal("backfilling", interrupted.GetProperty("phase").GetString());
        var doneBefore = interrupted.GetProperty("done").GetInt64();
        Assert.InRange(doneBefore, 1, 2999);

        // The same id resumes (the target is remembered) and finishes verified.
        var resumed = await Css.RunAsync(_app.Directory, "migrate", "graph-rebuild", "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var report = resumed.Json();
        Assert.True(report.GetProperty("resumedFrom").GetInt64() > 0);
        Assert.True(report.GetProperty("verified").GetBoolean());
        Assert.Equal(0, (await Css.RunAsync(_app.Directory, "check", "--json")).ExitCode);

        var log = await Css.RunAsync(_app.Directory, "log", "--json");
        Assert.True(log.ExitCode == 0, log.ToString());
        Assert.Contains(log.Json().GetProperty("migrations").EnumerateArray(), m => m.GetProperty("migrationId").GetString() == "graph-rebuild" && m.GetProperty("phase").GetString() == "completed");

        var rollback = await Css.RunAsync(_app.Directory, "migrate", "graph-rebuild", "--rollback", "--json");
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        Assert.Equal(3000, rollback.Json().GetProperty("removed").GetInt64());
        Assert.Equal(1, (await Css.RunAsync(_app.Directory, "check", "--json")).ExitCode);
    }

    [Fact]
    public async Task Log_reports_head_retained_entries_and_cursors()
    {
        await _app.WriteNotesAsync(50);
        var log = await Css.RunAsync(_app.Directory, "log", "--json");
        Assert.True(log.ExitCode == 0, log.ToString());
        var json = log.Json();
        Assert.Equal(50, json.GetProperty("head").GetInt64());
        Assert.Equal(1, json.GetProperty("oldestLsn").GetInt64());
        Assert.Equal(50, json.GetProperty("retainedEntries").GetInt64());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("partitions").ValueKind);
        Assert.All(json.GetProperty("cursors").EnumerateArray(), c => Assert.Equal(50, c.GetProperty("cursor").GetInt64()));

        // A replica left behind: the lag shows in changes and in time, and status exits 1.
        _app.Sql("source.db", "UPDATE cursors SET lsn = 40 WHERE store = 'graph'");
        var status = await Css.RunAsync(_app.Directory, "status", "--json");
        Assert.True(status.ExitCode == 1, status.ToString());
        var graph = status.Json().GetProperty("stores").EnumerateArray().Single(s => s.GetProperty("store").GetString() == "graph");
        Assert.Equal(10, graph.GetProperty("lagChanges").GetInt64());
        Assert.True(graph.GetProperty("lagSeconds").GetDouble() >= 0);
        Assert.Equal("lagging", graph.GetProperty("state").GetString());
    }

    [Fact]
    public async Task Errors_exit_2_with_one_readable_message()
    {
        var noConfig = await Css.RunAsync(Path.GetTempPath(), "status", "--config", Path.Combine(_app.Directory, "missing.json"));
        Assert.Equal(2, noConfig.ExitCode);
        Assert.Contains("does not exist", noConfig.Stderr, StringComparison.Ordinal);

        File.WriteAllText(_app.ConfigPath, """{ "CrossStoreSync": { "Collections": { "notes": {} }, "DispatchBatchSize": 0, "Source": { "Type": "Sqlite", "DirectoryPath": "data", "Durabel": true } } }""");
        var bad = await Css.RunAsync(_app.Directory, "status");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("CrossStoreSync:DispatchBatchSize is 0", bad.Stderr, StringComparison.Ordinal);
        Assert.Contains("CrossStoreSync:Source:Durabel is not a setting", bad.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", bad.Stderr, StringComparison.Ordinal);

        var usage = await Css.RunAsync(_app.Directory, "check", "--mode", "quick");
        Assert.Equal(2, usage.ExitCode);
        var unknown = await Css.RunAsync(_app.Directory, "statsu");
        Assert.Equal(2, unknown.ExitCode);
    }

    [Fact]
    public async Task Environment_variables_override_the_file_like_in_the_application()
    {
        await _app.WriteNotesAsync(5);
        var elsewhere = Path.Combine(_app.Directory, "other");
        Directory.CreateDirectory(elsewhere);
        using var css = Css.Start(Path.GetTempPath(), new Dictionary<string, string> { ["CrossStoreSync__Source__DirectoryPath"] = elsewhere }, "log", "--config", _app.ConfigPath, "--json");
        await css.WaitAsync();
        Assert.True(css.ExitCode == 0, css.ToString());
        Assert.Equal(0, css.Json().GetProperty("head").GetInt64()); // a fresh log in the other folder, not the application's
        Assert.True(File.Exists(Path.Combine(elsewhere, "source.db")));
    }

    private static List<(string Store, string Id, string Kind)> Findings(JsonElement report) =>
        report.GetProperty("collections").EnumerateArray()
            .SelectMany(c => c.GetProperty("stores").EnumerateArray())
            .SelectMany(s => s.GetProperty("findings").EnumerateArray().Select(f => (s.GetProperty("store").GetString()!, f.GetProperty("id").GetString()!, f.GetProperty("kind").GetString()!)))
            .ToList();

    public void Dispose() => _app.Dispose();
}
