using System.Globalization;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The "retention" modes, for SIGKILL in the middle of log truncation and tombstone purges. <c>retention-load</c> runs
/// the embedded SQLite engine with retention rounds every 50 ms in batches of 20, entries and tombstones eligible at
/// once, and four writers each owning its own keys (so each key's operations are sequential): an upsert prints
/// "ACK id version", a delete prints "DEL-START id" before and "DEL id version" once acknowledged. The retention task's
/// own debug events are echoed as "TRUNCATING n" (a truncation batch committed, more may follow) and "PURGING n" (a
/// tombstone purge batch committed). <c>retention-recover</c> restarts on the same files with retention on, writes a
/// marker, waits until every store has it, runs a deep consistency check and prints "CLEAN" or "DIRTY ...".
/// </summary>
internal static class RetentionMode
{
    public const int Keys = 120;

    public static async Task<int> RunAsync(string mode, string dir)
    {
        var stdout = new Stdout();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(new RetentionSignals(stdout));
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 8);
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
                o.PollInterval = TimeSpan.FromMilliseconds(100);
                o.Retention.KeepAppliedFor = TimeSpan.FromMilliseconds(1);
                o.Retention.TombstoneRetention = TimeSpan.FromMilliseconds(1);
                o.Retention.TruncationInterval = TimeSpan.FromMilliseconds(50);
                o.Retention.TruncationBatchSize = 20;
            })
            .UseSqlite(o => o.DirectoryPath = dir);
        using var host = builder.Build();
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<ISyncManager>();

        if (mode == "retention-recover")
        {
            var ticket = await manager.WriteAsync(Entity("marker", 0));
            var outcome = await manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(60));
            var report = await host.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
            stdout.Say(outcome != SyncWaitOutcome.Synced ? "NOT-SYNCED " + outcome
                : report.IsConsistent ? "CLEAN"
                : "DIRTY " + string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Missing} missing, {s.Orphaned} orphaned, {s.Stale} stale, {s.Corrupted} corrupted")));
            await host.StopAsync();
            return outcome == SyncWaitOutcome.Synced && report.IsConsistent ? 0 : 2;
        }

        stdout.Say("READY");
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var round = 1; ; round++)
            {
                for (var k = w; k < Keys; k += 4)
                {
                    var id = "k" + k.ToString(CultureInfo.InvariantCulture);
                    if ((round + k) % 5 == 0)
                    {
                        stdout.Say("DEL-START " + id);
                        var deleted = await manager.DeleteAsync(new EntityKey("items", id));
                        stdout.Say($"DEL {id} {deleted.Version.Value}");
                    }
                    else
                    {
                        var written = await manager.WriteAsync(Entity(id, round));
                        stdout.Say($"ACK {id} {written.Version.Value}");
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(writers);
        return 0;
    }

    private static SyncEntity Entity(string id, int round) => SyncEntity.FromJson(
        new EntityKey("items", id),
        $"{{\"id\":\"{id}\",\"round\":{round},\"text\":\"{new string('r', 300)}\"}}",
        Enumerable.Range(0, 8).Select(i => (float)((round + i) % 5)).ToArray(),
        [new SyncEdge("NEXT", new EntityKey("items", id + "-next"))]);

    /// <summary>Echoes the retention task's batch events (stable ids 6010 and 6011) to stdout as they happen.</summary>
    private sealed class RetentionSignals(Stdout stdout) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is not IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                return;
            }

            if (eventId.Id == 6010 && Value(values, "Removed") is long removed && removed > 0)
            {
                stdout.Say("TRUNCATING " + removed.ToString(CultureInfo.InvariantCulture));
            }
            else if (eventId.Id == 6011 && Value(values, "Count") is int count && count > 0)
            {
                stdout.Say("PURGING " + count.ToString(CultureInfo.InvariantCulture));
            }
        }

        public void Dispose()
        {
        }

        private static object? Value(IReadOnlyList<KeyValuePair<string, object?>> values, string name)
        {
            foreach (var (key, value) in values)
            {
                if (key == name)
                {
                    return value;
                }
            }

            return null;
        }
    }
}
