// QuickStart: the whole library on embedded SQLite, no servers.
// Writes a few thousand notes (JSON document + embedding + edges) through AddCrossStoreSync, takes the vector store
// down for a while, brings it back, waits until every store caught up, proves agreement with a deep consistency
// check, damages the replicas behind the library's back, finds every difference, repairs them through the log and
// checks again, then loses the whole graph store and rebuilds it with a resumable backfill (migration manager).
// Exit code 0 only when every store agrees with the source of truth.
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

const string Collection = "notes";
const int Dimension = 64;
const int Notes = 3000;
var dataDirectory = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "crossstoresync-quickstart");
if (Directory.Exists(dataDirectory))
{
    Directory.Delete(dataDirectory, recursive: true);
}

// The vector store is wrapped in a fault injector only so this demo can take it "down"; apps register it directly.
var outage = new StoreFaults();
await using var vectors = new SqliteVectorStore(Path.Combine(dataDirectory, "vectors.db"));
var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("CrossStoreSync.Dispatcher", LogLevel.Error);
builder.Services
    .AddCrossStoreSync(o =>
    {
        o.AddCollection(Collection, Dimension);
        o.AddCollection("topics");
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(500);
    })
    .UseSqlite(o =>
    {
        o.DirectoryPath = dataDirectory;
        o.VectorStoreName = null; // registered below, behind the outage switch
    })
    .AddReplica("quickstart-vectors", _ => new FaultInjectingVectorStore(vectors, outage));

using var host = builder.Build();
await host.StartAsync();
var sync = host.Services.GetRequiredService<ISyncManager>();
var documents = host.Services.GetRequiredService<SqliteChangeLog>().Documents;
var graph = host.Services.GetRequiredService<SqliteGraphStore>();

AnsiConsole.MarkupLine($"[bold]CrossStoreSync QuickStart[/] — data in [grey]{dataDirectory}[/]");

// 1. Write notes in batches, with a progress bar.
SyncTicket last = default;
await AnsiConsole.Progress().StartAsync(async ctx =>
{
    var task = ctx.AddTask($"Writing {Notes} notes", maxValue: Notes);
    for (var start = 0; start < Notes; start += 100)
    {
        last = await sync.WriteBatchAsync(Enumerable.Range(start, 100).Select(i => Note(i, "first draft")).ToArray());
        task.Increment(100);
    }

    var wait = ctx.AddTask("Applying to vector and graph stores", maxValue: 1);
    var outcome = await sync.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
    wait.Increment(1);
    if (outcome != SyncWaitOutcome.Synced)
    {
        throw new InvalidOperationException($"Initial sync did not complete: {outcome}.");
    }
});
await ShowStatistics("After the first load");

// 2. The vector store goes down; writes keep being accepted and logged.
outage.GoDown();
AnsiConsole.MarkupLine("[yellow]The vector store is down.[/] Writing updates, new notes and deletes anyway...");
last = await sync.WriteBatchAsync(Enumerable.Range(0, 500).Select(i => Note(i, "second draft")).ToArray());
last = await sync.WriteBatchAsync(Enumerable.Range(Notes, 500).Select(i => Note(i, "new")).ToArray());
for (var i = 0; i < 50; i++)
{
    last = await sync.DeleteAsync(new EntityKey(Collection, NoteId(Notes - 1 - i)));
}

var lagging = await sync.WaitForSyncAsync(last, TimeSpan.FromMilliseconds(500));
AnsiConsole.MarkupLine($"Waiting half a second while it is down: [yellow]{lagging}[/]");
await ShowStatistics("While the vector store is down");

// 3. It comes back: its dispatcher resumes from its durable cursor and catches up.
outage.ComeBack();
AnsiConsole.MarkupLine("[green]The vector store is back.[/] Catching up...");
var caughtUp = await sync.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
AnsiConsole.MarkupLine($"Sync: [bold]{caughtUp}[/]");
await ShowStatistics("After catching up");

// 4. Prove agreement by reading what each store really holds (deep: the stored content itself, not only _sync).
var checker = host.Services.GetRequiredService<IConsistencyChecker>();
var deep = new ConsistencyCheckOptions { Deep = true };
var first = await checker.CheckAsync(Collection, deep);
ShowReport("Consistency check after catching up", first);

// 5. Damage the replicas behind the library's back, as other programs, restores or bugs do.
await DamageAsync();
AnsiConsole.MarkupLine("[yellow]Edited the replicas directly with SQL:[/] deleted 25 vectors, zeroed 10, added 5 stray vectors; deleted 10 graph nodes, left 8 nodes of deleted notes behind.");
var drifted = await checker.CheckAsync(Collection, deep);
ShowReport("Consistency check after out-of-band edits", drifted);

// 6. Repair: every finding becomes a change in the log, applied by the normal dispatchers.
var plan = await checker.RepairAsync(drifted, dryRun: true);
AnsiConsole.MarkupLine($"Repair plan (dry run): {plan.Actions.Count(a => a.Kind == ChangeKind.Upsert)} re-projections from the source, {plan.Actions.Count(a => a.Kind == ChangeKind.Delete)} orphan deletes.");
var repair = await checker.RepairAsync(drifted);
var repaired = repair.Ticket is { } repairTicket ? await sync.WaitForSyncAsync(repairTicket, TimeSpan.FromMinutes(1)) : SyncWaitOutcome.Synced;
var final = await checker.CheckAsync(Collection, deep);
ShowReport("Consistency check after repair", final);

// 7. The graph store is lost (a wiped volume, a bad restore): rebuild it from the source of truth with a backfill.
// It streams the source in parallel bucket ranges, adapts its batch size, checkpoints every batch (a killed process
// resumes) and verifies the result with a consistency check; writes made meanwhile reach the store through its log.
await Sql(graph.DatabasePath, "DELETE FROM edges; DELETE FROM nodes;");
AnsiConsole.MarkupLine($"[yellow]Wiped the graph store:[/] {await graph.CountAsync(Collection, CancellationToken.None)} nodes left.");
MigrationReport? rebuild = null;
await AnsiConsole.Progress()
    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
    .StartAsync(async ctx =>
    {
        var task = ctx.AddTask("Backfilling the graph store", maxValue: 1);
        var progress = new InlineProgress(p =>
        {
            task.MaxValue = Math.Max(1, p.Total);
            task.Value = p.Done;
            task.Description = $"Backfilling the graph store ({p.Phase}, batch {p.BatchSize}, {p.EntitiesPerSecond:0}/s)";
        });
        rebuild = await host.Services.GetRequiredService<IMigrationManager>().RunAsync(
            new MigrationRequest { Id = "graph-rebuild", Target = graph.Name, Workers = 2, InitialBatchSize = 64 },
            progress);
    });
AnsiConsole.MarkupLine($"Rebuilt: {rebuild!.Written} notes written, batch sizes {rebuild.BatchSizes.Min}..{rebuild.BatchSizes.Max}, verified [bold]{(rebuild.IsVerified ? "consistent" : "NOT consistent")}[/].");

var hits = await vectors.SearchAsync(Collection, Embed("note 42 second draft"), 3, CancellationToken.None);
AnsiConsole.MarkupLine($"Nearest notes to 'note 42 second draft': {string.Join(", ", hits.Select(h => $"{h.Key.Id} ({h.Score:0.000})"))}");
await host.StopAsync();

var agreed = caughtUp == SyncWaitOutcome.Synced && first.IsConsistent && repaired == SyncWaitOutcome.Synced && final.IsConsistent
    && drifted.Stores.Sum(s => s.Inconsistent) == 25 + 10 + 5 + 10 + 8
    && rebuild.IsVerified && await CountNodes() == final.SourceEntities;
if (agreed)
{
    AnsiConsole.MarkupLine("[bold green]Every store agrees with the source of truth.[/]");
    return 0;
}

AnsiConsole.MarkupLine("[bold red]Stores disagree.[/]");
return 1;

async Task ShowStatistics(string title)
{
    var table = new Table().Title(title).AddColumns("Store", "Records", "Cursor", "Lag (changes)", "Lag (s)", "Dead letters");
    var stores = new Dictionary<string, ISyncStore> { [documents.Name] = documents, [graph.Name] = graph, [vectors.Name] = vectors };
    foreach (var s in await sync.GetStatisticsAsync())
    {
        var count = await stores[s.Store].CountAsync(Collection, CancellationToken.None);
        table.AddRow(s.Store + (s.IsSource ? " (source)" : string.Empty), count.ToString(), s.Cursor.ToString(), s.LagChanges.ToString(), s.LagSeconds.ToString("0.00"), s.DeadLetters.ToString());
    }

    AnsiConsole.Write(table);
}

void ShowReport(string title, ConsistencyReport report)
{
    var table = new Table().Title($"{title} ({report.SourceEntities} source entities, {report.Duration.TotalMilliseconds:0} ms)")
        .AddColumns("Store", "Consistent", "Missing", "Stale", "Corrupted", "Orphaned", "Buckets differing");
    foreach (var s in report.Stores)
    {
        table.AddRow(s.Store, s.Consistent.ToString(), s.Missing.ToString(), s.Stale.ToString(), s.Corrupted.ToString(), s.Orphaned.ToString(), $"{s.BucketsDiffering} of {s.BucketsCompared}");
    }

    AnsiConsole.Write(table);
}

async Task DamageAsync()
{
    await Sql(vectors.DatabasePath, "DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors WHERE collection = 'notes' ORDER BY id LIMIT 25 OFFSET 100)");
    await Sql(vectors.DatabasePath, "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE rowid IN (SELECT rowid FROM vectors WHERE collection = 'notes' ORDER BY id LIMIT 10 OFFSET 1000)");
    await Sql(graph.DatabasePath, "DELETE FROM nodes WHERE rowid IN (SELECT rowid FROM nodes WHERE collection = 'notes' ORDER BY id LIMIT 10 OFFSET 2000)");
    for (var i = 0; i < 8; i++)
    {
        var ghost = Note(90_000 + i, "deleted long ago");
        await Sql(graph.DatabasePath, "INSERT INTO nodes (collection, id, version, hash, bucket, deleted) VALUES ($c, $id, 1, zeroblob(16), $b, 0)", ghost.Key);
        if (i < 5)
        {
            await Sql(vectors.DatabasePath, "INSERT INTO vectors (collection, id, version, hash, bucket, deleted, vector) VALUES ($c, $id, 1, zeroblob(16), $b, 0, zeroblob(256))", ghost.Key);
        }
    }
}

async Task<long> CountNodes() => await graph.CountAsync(Collection, CancellationToken.None);

static async Task Sql(string database, string sql, EntityKey? key = null)
{
    await using var connection = new SqliteConnection($"Data Source={database}");
    await connection.OpenAsync();
    await using var command = connection.CreateCommand();
    command.CommandText = sql;
    if (key is { } k)
    {
        command.Parameters.AddWithValue("$c", k.Collection);
        command.Parameters.AddWithValue("$id", k.Id);
        command.Parameters.AddWithValue("$b", (long)KeyHash.Bucket(k));
    }

    await command.ExecuteNonQueryAsync();
}

static string NoteId(int i) => "note-" + i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture);

static SyncEntity Note(int i, string draft)
{
    var text = $"note {i} {draft}";
    var json = $"{{\"title\":\"Note {i}\",\"text\":\"{text}\",\"draft\":\"{draft}\"}}";
    return new SyncEntity(
        new EntityKey(Collection, NoteId(i)),
        Encoding.UTF8.GetBytes(json),
        Embed(text),
        [
            new SyncEdge("FOLLOWS", new EntityKey(Collection, NoteId(Math.Max(0, i - 1)))),
            new SyncEdge("ABOUT", new EntityKey("topics", "topic-" + (i % 12).ToString(System.Globalization.CultureInfo.InvariantCulture))),
        ]);
}

// A stand-in embedding (hashed character trigrams), so the demo needs no model: similar texts get similar vectors.
static float[] Embed(string text)
{
    var vector = new float[Dimension];
    for (var i = 0; i + 3 <= text.Length; i++)
    {
        var h = XxHash64.Hash(Encoding.UTF8.GetBytes(text.Substring(i, 3)));
        vector[(int)(h % Dimension)] += (h & 1) == 0 ? 1 : -1;
    }

    return vector;
}

/// <summary>Reports on the reporting thread (unlike <see cref="Progress{T}"/>), so the bar never lags the work.</summary>
internal sealed class InlineProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
{
    public void Report(MigrationProgress value) => report(value);
}
