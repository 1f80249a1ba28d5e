using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NpgsqlTypes;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The "cdc" mode: the embedded SQLite engine fed by the PostgreSQL change feed of one table
/// (<c>id int primary key, rev int, payload text</c>) with batches of 50 row changes, so large transactions span
/// several batches. Prints "READY" once started and "WRITTEN n" (row changes written so far) after every batch, then
/// runs until killed; with a target LSN it waits until the feed handled it and every replica applied it, prints the
/// outcome and exits. With <c>CSS_CDC_TRACE=path</c> the feed's debug log goes to <c>path.&lt;pid&gt;</c> (for
/// investigating a failed crash test; stdout stays the protocol).
/// </summary>
internal static class CdcMode
{
    public const int BatchSize = 50;

    /// <summary>args: dir connectionString table slot [untilLsn]</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var (dir, connectionString, table, slot) = (args[0], args[1], args[2], args[3]);
        var until = args.Length > 4 ? NpgsqlLogSequenceNumber.Parse(args[4]) : (NpgsqlLogSequenceNumber?)null;
        var stdout = new Stdout();
        void Say(string line) => stdout.Say(line);

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("CSS_CDC_TRACE") is { } trace)
        {
            Console.SetError(new StreamWriter(trace + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture)) { AutoFlush = true });
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).AddFilter("CrossStoreSync.PostgreSql", LogLevel.Debug);
        }
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 4);
                o.PollInterval = TimeSpan.FromMilliseconds(100);
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
            })
            .UseSqlite(o => o.DirectoryPath = dir)
            .AddPostgresChangeFeed(o =>
            {
                o.ConnectionString = connectionString;
                o.SlotName = slot;
                o.PublicationName = slot;
                o.BatchSize = BatchSize;
                o.StatusInterval = TimeSpan.FromMilliseconds(200);
                o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
                o.MapTable(table, "items", Map);
            });

        long written = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "CrossStoreSync" && instrument.Name == "crossstoresync.cdc.changes")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "outcome" && (string?)tag.Value == "written")
                {
                    Say("WRITTEN " + Interlocked.Add(ref written, value).ToString(CultureInfo.InvariantCulture));
                }
            }
        });
        listener.Start();

        using var host = builder.Build();
        await host.StartAsync();
        Say("READY");
        if (until is not { } target)
        {
            await host.WaitForShutdownAsync();
            return 0;
        }

        var feed = host.Services.GetRequiredService<PostgresChangeFeed>();
        var ticket = await feed.WaitForLsnAsync(target, TimeSpan.FromMinutes(2));
        var outcome = ticket is { } t
            ? await host.Services.GetRequiredService<ISyncManager>().WaitForSyncAsync(t, TimeSpan.FromMinutes(2))
            : SyncWaitOutcome.Synced;
        Say(outcome.ToString());
        await host.StopAsync();
        return outcome == SyncWaitOutcome.Synced ? 0 : 2;
    }

    private static SyncEntity Map(EntityKey key, PostgresRow row)
    {
        var id = row.Get<int>("id");
        var rev = row.Get<int>("rev");
        return new SyncEntity(key, row.ToJson(), new float[] { id % 7 + 1, rev, 1, 0 }, [new SyncEdge("NEXT", new EntityKey("items", (id + 1).ToString(CultureInfo.InvariantCulture)))]);
    }
}
