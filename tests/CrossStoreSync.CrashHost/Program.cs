// A child process for crash tests: the parent test starts it, reads what it acknowledges on stdout, kills it with
// SIGKILL at a chosen moment, restarts it on the same files and checks that the stores converge.
using System.Globalization;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: CrashHost <load|recover|pending|recover-pending|migrate> <dir> [hang-at-call]");
    Console.Error.WriteLine("       CrashHost <surreal-load|surreal-recover> <dir> <endpoint> <namespace> <database>");
    Console.Error.WriteLine("       CrashHost cdc <dir> <connection string> <table> <slot> [until-lsn]");
    Console.Error.WriteLine("       CrashHost pg-worker <dir> <connection string> <worker id> <idle|writer:ROUNDS:KEYS>");
    Console.Error.WriteLine("       CrashHost <retention-load|retention-recover> <dir>");
    Console.Error.WriteLine("       CrashHost compensate <dir> | compensate-recover <dir> <first-lsn> <last-lsn>");
    return 64;
}

var mode = args[0];
var dir = args[1];

if (mode == "pg-worker" && args.Length >= 5)
{
    return await CrossStoreSync.CrashHost.PgWorkerMode.RunAsync(dir, args[2], args[3], args[4]);
}

if (mode.StartsWith("retention-", StringComparison.Ordinal))
{
    return await CrossStoreSync.CrashHost.RetentionMode.RunAsync(mode, dir);
}

if (mode.StartsWith("compensate", StringComparison.Ordinal))
{
    return await CrossStoreSync.CrashHost.CompensateMode.RunAsync(mode, args[1..]);
}

if (mode == "cdc")
{
    // cdc <dir> <connection string> <table> <slot> [until-lsn]: the PostgreSQL change feed into the SQLite engine.
    return await CrossStoreSync.CrashHost.CdcMode.RunAsync(args[1..]);
}

// surreal-*: the same workloads with a SurrealDB source of truth; the SQLite log and replicas stay in <dir>.
var surreal = mode.StartsWith("surreal-", StringComparison.Ordinal) && args.Length >= 5;
mode = surreal ? mode["surreal-".Length..] : mode;
var coupled = !mode.Contains("pending", StringComparison.Ordinal);
var hangAt = args.Length > 2 && !surreal ? int.Parse(args[2], CultureInfo.InvariantCulture) : 0;
var faults = new StoreFaults();

if (mode == "migrate")
{
    return await CrossStoreSync.CrashHost.MigrateMode.RunAsync(dir);
}

var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders();
var sync = builder.Services.AddCrossStoreSync(o =>
{
    o.AddCollection("items", 8);
    o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
    o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
    o.PollInterval = TimeSpan.FromMilliseconds(100);
});
if (coupled)
{
    sync.UseSqlite(o => o.DirectoryPath = dir);
    if (surreal)
    {
        sync.AddSurrealDbDocumentStore(o =>
        {
            o.Endpoint = new Uri(args[2]);
            o.Namespace = args[3];
            o.Database = args[4];
        });
    }
}
else
{
    // Log and source in different files: the pending → committed protocol protects the invariant.
    builder.Services.AddSingleton(_ => new SqliteChangeLog(Path.Combine(dir, "log.db")));
    builder.Services.AddSingleton(_ => new SqliteDocumentStore(Path.Combine(dir, "docs.db")));
    builder.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(dir, "vectors.db")));
    builder.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(dir, "graph.db")));
    sync.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
        .UseSourceOfTruth(sp => new FaultInjectingDocumentStore(sp.GetRequiredService<SqliteDocumentStore>(), faults))
        .AddReplica("v", sp => sp.GetRequiredService<SqliteVectorStore>())
        .AddReplica("g", sp => sp.GetRequiredService<SqliteGraphStore>());
}

using var host = builder.Build();
await host.StartAsync();
var manager = host.Services.GetRequiredService<ISyncManager>();
var stdout = new CrossStoreSync.CrashHost.Stdout();

void Say(string line) => stdout.Say(line);

static SyncEntity Make(string id, int round)
{
    var vector = new float[8];
    for (var i = 0; i < vector.Length; i++)
    {
        vector[i] = (round + i + id.Length) % 7;
    }

    return SyncEntity.FromJson(
        new EntityKey("items", id),
        $"{{\"id\":\"{id}\",\"round\":{round},\"text\":\"{new string('x', 200)}\"}}",
        vector,
        [new SyncEdge("NEXT", new EntityKey("items", id + "-next"))]);
}

switch (mode)
{
    case "load":
    {
        // Eight concurrent writers over 300 overlapping keys, until killed; each acknowledged write is reported with
        // its version, so the parent can check that nothing acknowledged was lost or regressed.
        Say("READY");
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var round = 0; ; round++)
            {
                var entity = Make($"k{(round * 13 + w * 37) % 300}", round);
                var ticket = await manager.WriteAsync(entity);
                Say($"ACK {entity.Key.Id} {ticket.Version.Value}");
            }
        })).ToArray();
        await Task.WhenAll(writers);
        return 0;
    }

    case "pending":
    {
        // Hang inside the source write of call N: the change is in the log (pending) but not in the source.
        var calls = 0;
        faults.BeforeApply = async _ =>
        {
            if (Interlocked.Increment(ref calls) == hangAt)
            {
                Say("IN-WINDOW");
                await Task.Delay(Timeout.Infinite);
            }
        };
        Say("READY");
        for (var i = 0; ; i++)
        {
            var entity = Make($"p{i}", i);
            var ticket = await manager.WriteAsync(entity);
            Say($"ACK {entity.Key.Id} {ticket.Version.Value}");
        }
    }

    case "recover":
    case "recover-pending":
    {
        var ticket = await manager.WriteAsync(Make("marker", 0));
        var outcome = await manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(60));
        Say(outcome.ToString());
        await host.StopAsync();
        return outcome == SyncWaitOutcome.Synced ? 0 : 2;
    }

    default:
        Console.Error.WriteLine($"unknown mode '{mode}'");
        return 64;
}
