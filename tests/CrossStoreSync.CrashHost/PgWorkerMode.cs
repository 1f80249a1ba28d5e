using System.Globalization;
using System.Text;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The "pg-worker" mode: one of several processes dispatching one PostgreSQL change log into shared SQLite vector and
/// graph replicas (files in &lt;dir&gt;). Arguments: &lt;dir&gt; &lt;connection string&gt; &lt;worker id&gt; &lt;role&gt;, where role is
/// <c>idle</c> (dispatch only) or <c>writer:ROUNDS:KEYS</c> (also writes ROUNDS batches rewriting the same KEYS keys).
/// Prints "PARTITIONS store count" whenever its share changes, "ROUND r lsn" per acknowledged batch, "WROTE lsn" and
/// then "SYNCED" once every store (every partition, whoever holds it) applied the last batch.
/// </summary>
internal static class PgWorkerMode
{
    public static async Task<int> RunAsync(string dir, string connectionString, string worker, string role)
    {
        var stdout = new Stdout();
        void Say(string line) => stdout.Say(line);

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(dir, "vectors.db"), "vectors"));
        builder.Services.AddSingleton(_ => new SqliteGraphStore(Path.Combine(dir, "graph.db"), "graph"));
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 8);
                o.WorkerId = worker;
                o.PartitionLeaseDuration = TimeSpan.FromSeconds(2);
                o.PollInterval = TimeSpan.FromMilliseconds(100);
                o.CursorCheckpointInterval = TimeSpan.FromMilliseconds(100);
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
            })
            .UsePostgreSql(o =>
            {
                o.ConnectionString = connectionString;
                o.Partitions = 16;
            })
            .AddReplica("vectors", sp => sp.GetRequiredService<SqliteVectorStore>())
            .AddReplica("graph", sp => sp.GetRequiredService<SqliteGraphStore>());

        using var host = builder.Build();
        var manager = host.Services.GetRequiredService<ISyncManager>();
        var events = manager.SubscribeAsync();
        _ = Task.Run(async () =>
        {
            await foreach (var e in events)
            {
                if (e.Kind == SyncEventKind.PartitionsChanged)
                {
                    Say($"PARTITIONS {e.Store} {e.Count.ToString(CultureInfo.InvariantCulture)}");
                }
            }
        });
        await host.StartAsync();
        Say("READY");

        if (role.StartsWith("writer:", StringComparison.Ordinal))
        {
            var parts = role.Split(':');
            var rounds = int.Parse(parts[1], CultureInfo.InvariantCulture);
            var keys = int.Parse(parts[2], CultureInfo.InvariantCulture);
            SyncTicket ticket = default;
            for (var round = 0; round < rounds; round++)
            {
                var batch = new SyncEntity[keys];
                for (var k = 0; k < keys; k++)
                {
                    batch[k] = SyncEntity.FromJson(
                        new EntityKey("items", "k" + k.ToString(CultureInfo.InvariantCulture)),
                        $"{{\"round\":{round},\"text\":\"{new string('y', 100)}\"}}",
                        new float[] { round, k, 1, 2, 3, 4, 5, 6 },
                        [new SyncEdge("NEXT", new EntityKey("items", "k" + ((k + round) % keys).ToString(CultureInfo.InvariantCulture)))]);
                }

                ticket = await manager.WriteBatchAsync(batch);
                Say($"ROUND {round.ToString(CultureInfo.InvariantCulture)} {ticket.Lsns.Last.ToString(CultureInfo.InvariantCulture)}");
            }

            Say($"WROTE {ticket.Lsns.Last.ToString(CultureInfo.InvariantCulture)}");
            var outcome = await manager.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(120));
            Say(outcome == SyncWaitOutcome.Synced ? "SYNCED" : "NOT-SYNCED " + outcome);
        }

        // Dispatch until killed.
        await Task.Delay(Timeout.Infinite);
        return 0;
    }
}
