// One node of the multi-node harness (tests/CrossStoreSync.Peering.Tests/Harness): a real process with its own SQLite
// stores, serving and pulling the peer protocol, driven line by line on stdin; every command is answered with one JSON
// line on stdout. The parent kills it with SIGKILL when a test asks for a crash.
//
// usage: PeerNode --node N --dir DIR --key BASE64 --listen URL [--peer ID=URL=PUBKEY ...] [--clock-offset-ms MS]
//                 [--crash before-commit:N|after-commit:N] [--resolver union]
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Peering;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.PeerNode;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var options = NodeArguments.Parse(args);
var clock = new OffsetClock { Offset = TimeSpan.FromMilliseconds(options.ClockOffsetMs) };
var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders();
if (Environment.GetEnvironmentVariable("CSS_PEER_NODE_LOG") is "1")
{
    builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning);
    builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
}

builder.Services.AddSingleton<TimeProvider>(clock);
builder.Services.AddCrossStoreSync(o =>
    {
        o.AddCollection("notes", 4);
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
        o.PollInterval = TimeSpan.FromMilliseconds(200);
    })
    .UseSqlite(o => o.DirectoryPath = options.Directory)
    .AddPeering(o =>
    {
        o.NodeId = options.NodeId;
        o.SigningKey = options.Key;
        o.ListenUrl = options.Listen;
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
        o.RetryMaxDelay = TimeSpan.FromSeconds(1);
        o.RequestTimeout = TimeSpan.FromSeconds(5);
        o.LongPollTimeout = TimeSpan.FromSeconds(2);
        o.MaxClockSkew = TimeSpan.FromSeconds(30);
        o.ChunkEntries = options.ChunkEntries;
        foreach (var (id, url, key) in options.Peers)
        {
            o.Peers.Add(new PeerOptions { NodeId = id, Url = url, PublicKey = key });
        }

        if (options.Resolver == "union")
        {
            o.ConflictResolvers["notes"] = new WordUnionResolver();
        }
    });
if (options.Crash is { } crash)
{
    // Wraps the engine's replication writer so the process kills itself with SIGKILL around the Nth batch commit.
    builder.Services.Replace(ServiceDescriptor.Singleton<IReplicationWriter>(sp => new CrashingWriter((IReplicationWriter)sp.GetRequiredService<ISyncManager>(), crash)));
}

using var host = builder.Build();
await host.StartAsync();
var commands = new NodeCommands(host.Services, options, clock);
Console.Out.WriteLine(JsonSerializer.Serialize(new { ready = true, node = options.NodeId, pid = Environment.ProcessId }));
Console.Out.Flush();
string? line;
while ((line = await Console.In.ReadLineAsync()) is not null)
{
    if (line.Length == 0)
    {
        continue;
    }

    string answer;
    try
    {
        answer = await commands.RunAsync(line);
    }
    catch (Exception ex)
    {
        answer = JsonSerializer.Serialize(new { ok = false, error = ex.GetType().Name, message = ex.Message });
    }

    Console.Out.WriteLine(answer);
    Console.Out.Flush();
    if (line == "exit")
    {
        break;
    }
}

await host.StopAsync();
return 0;
