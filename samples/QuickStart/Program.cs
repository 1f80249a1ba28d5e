// QuickStart: the whole library on embedded SQLite, no servers.
// Writes a few thousand notes (JSON document + embedding + edges) through AddCrossStoreSync, takes the vector store
// down for a while, brings it back, waits until every store caught up, then proves agreement by reading what each
// store really holds. Exit code 0 only when every store agrees with the source of truth.
using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
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

// 4. Prove agreement by reading what each store really holds.
var problems = await CompareWithSource(vectors) + await CompareWithSource(graph);
var hits = await vectors.SearchAsync(Collection, Embed("note 42 second draft"), 3, CancellationToken.None);
AnsiConsole.MarkupLine($"Nearest notes to 'note 42 second draft': {string.Join(", ", hits.Select(h => $"{h.Key.Id} ({h.Score:0.000})"))}");
await host.StopAsync();

if (caughtUp == SyncWaitOutcome.Synced && problems == 0)
{
    AnsiConsole.MarkupLine("[bold green]Every store agrees with the source of truth.[/]");
    return 0;
}

AnsiConsole.MarkupLine($"[bold red]Stores disagree: {problems} difference(s).[/]");
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

async Task<int> CompareWithSource(ISyncStore replica)
{
    var expected = new Dictionary<string, (HlcTimestamp Version, UInt128 Projection)>(StringComparer.Ordinal);
    string? after = null;
    while (true)
    {
        var page = await documents.ScanAsync(Collection, after, 500, CancellationToken.None);
        if (page.Count == 0)
        {
            break;
        }

        foreach (var e in page)
        {
            expected[e.Entity.Key.Id] = (e.Version, ProjectionHash.Compute(e.Entity, replica.Kind));
        }

        after = page[^1].Entity.Key.Id;
    }

    var differences = 0;
    var seen = 0;
    await foreach (var digest in replica.ScanDigestsAsync(Collection, BucketRange.All, CancellationToken.None))
    {
        seen++;
        if (!expected.TryGetValue(digest.Key.Id, out var want) || want.Version != digest.Version || want.Projection != digest.ProjectionHash)
        {
            differences++;
        }
    }

    differences += Math.Max(0, expected.Count - seen);
    AnsiConsole.MarkupLine($"{replica.Name}: {seen} records read, {expected.Count} expected from the source, [{(differences == 0 ? "green" : "red")}]{differences} difference(s)[/]");
    return differences;
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
