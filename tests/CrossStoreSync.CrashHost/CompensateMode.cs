using System.Globalization;
using System.Text;
using CrossStoreSync.Consistency;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Testing.Faults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The "compensate" modes, for SIGKILL between a replica's rejection and the compensating write. The embedded SQLite
/// engine (coupled log and source <c>source.db</c>, replicas <c>vectors.db</c> and <c>graph.db</c>) with collection
/// <c>items</c> under <see cref="ReplicaRejectionPolicy.Compensate"/>. <c>compensate</c> writes keys c0..c9 at revision 1,
/// waits for them everywhere, then has the vector store reject c5 at revision 2 and writes all ten at revision 2; it
/// prints "WROTE first last" and, once the rejection is durably recorded and the compensation is about to be decided,
/// "REQUESTED lsn" — and then hangs there, so the parent kills it with the decision in the log and no compensating write.
/// <c>compensate-recover first last</c> restarts on the same files, waits for that ticket and prints
/// "OUTCOME outcome state", then "CLEAN" or "DIRTY ..." from a deep consistency check.
/// </summary>
internal static class CompensateMode
{
    public const int Keys = 10;
    public const string Rejected = "c5";

    public static async Task<int> RunAsync(string mode, string[] args)
    {
        var dir = args[0];
        var stdout = new Stdout();
        var faults = new StoreFaults();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_ => new SqliteChangeLog(Path.Combine(dir, "source.db")));
        builder.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(dir, "vectors.db"), "vectors"));
        builder.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(dir, "graph.db"), "graph"));
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 8, onReplicaRejection: ReplicaRejectionPolicy.Compensate);
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
                o.PollInterval = TimeSpan.FromMilliseconds(100);
            })
            .UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
            .UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents)
            .AddReplica("vectors", sp => new FaultInjectingVectorStore(sp.GetRequiredService<SqliteVectorStore>(), faults))
            .AddReplica("graph", sp => sp.GetRequiredService<SqliteGraphStore>());
        using var host = builder.Build();
        var engine = host.Services.GetRequiredService<SyncEngine>();
        var manager = host.Services.GetRequiredService<ISyncManager>();

        if (mode == "compensate-recover")
        {
            await host.StartAsync();
            var ticket = new SyncTicket(new LsnRange(long.Parse(args[1], CultureInfo.InvariantCulture), long.Parse(args[2], CultureInfo.InvariantCulture)), default);
            var result = await manager.WaitForSyncResultAsync(ticket, TimeSpan.FromSeconds(60));
            stdout.Say($"OUTCOME {result.Outcome} {string.Join(",", result.Compensations.Select(c => c.State))}");
            var report = await host.Services.GetRequiredService<IConsistencyChecker>().CheckAsync("items", new ConsistencyCheckOptions { Deep = true });
            stdout.Say(report.IsConsistent ? "CLEAN" : "DIRTY " + string.Join("; ", report.Stores.Select(s => $"{s.Store}: {s.Inconsistent}")));
            await host.StopAsync();
            return result.Outcome == SyncWaitOutcome.Compensated && report.IsConsistent ? 0 : 2;
        }

        // The compensation loop stops here, between the durable request and the compensating write, until killed.
        engine.BeforeCompensate = async (record, ct) =>
        {
            stdout.Say("REQUESTED " + record.Lsn.ToString(CultureInfo.InvariantCulture));
            await Task.Delay(Timeout.Infinite, ct);
        };
        await host.StartAsync();
        var first = await manager.WriteBatchAsync(Batch(1));
        if (await manager.WaitForSyncAsync(first, TimeSpan.FromSeconds(60)) != SyncWaitOutcome.Synced)
        {
            return 2;
        }

        faults.RejectChanges(c => c.Key.Id == Rejected && c.Entity is { } e && Encoding.UTF8.GetString(e.Document.Span).Contains("\"rev\":2", StringComparison.Ordinal), "vector index refuses revision 2");
        var second = await manager.WriteBatchAsync(Batch(2));
        stdout.Say($"WROTE {second.Lsns.First.ToString(CultureInfo.InvariantCulture)} {second.Lsns.Last.ToString(CultureInfo.InvariantCulture)}");
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    /// <summary>The entity of key <paramref name="id"/> at <paramref name="revision"/> (document, vector and edge all change with it).</summary>
    public static SyncEntity Entity(string id, int revision) => SyncEntity.FromJson(
        new EntityKey("items", id),
        $"{{\"id\":\"{id}\",\"rev\":{revision}}}",
        new float[] { revision, 1, 2, 3, 4, 5, 6, 7 },
        [new SyncEdge("REV", new EntityKey("items", "rev-" + revision.ToString(CultureInfo.InvariantCulture)))]);

    private static SyncEntity[] Batch(int revision) =>
        [.. Enumerable.Range(0, Keys).Select(i => Entity("c" + i.ToString(CultureInfo.InvariantCulture), revision))];
}
