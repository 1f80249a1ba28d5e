using System.Globalization;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.Stores;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.Dispatch;

/// <summary>
/// Several real worker processes dispatch one PostgreSQL outbox into shared SQLite replicas while one of them writes;
/// another is killed with SIGKILL mid-load. The survivors take its partitions over when its lease expires, and every
/// replica ends with exactly the source's newest version of every key.
/// </summary>
public sealed class WorkerProcessTests() : DatabaseAndDirectory("csworkers")
{
    private const int Rounds = 40;
    private const int Keys = 300;

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Workers_share_the_log_under_load_and_one_killed_loses_nothing(int workers)
    {
        var shares = new Dictionary<string, int>();
        var processes = new List<ChildProcess>();
        try
        {
            // The dispatch-only workers start first and hold every partition; the writer joins and gets its share.
            for (var w = 1; w < workers; w++)
            {
                var child = ChildProcess.Start("pg-worker", Dir, Database.ConnectionString, $"w{w}", "idle");
                processes.Add(child);
                await child.ReadUntilAsync(l => l.StartsWith("PARTITIONS vectors ", StringComparison.Ordinal), l => Track(shares, $"w{w}", l));
            }

            var writer = ChildProcess.Start("pg-worker", Dir, Database.ConnectionString, "w0", $"writer:{Rounds}:{Keys}");
            processes.Insert(0, writer);

            // Kill the last idle worker while it holds partitions, part-way through the load.
            var victim = processes[^1];
            var killAt = Random.Shared.Next(5, Rounds / 2);
            await writer.ReadUntilAsync(l => l.StartsWith($"ROUND {killAt} ", StringComparison.Ordinal), l => Track(shares, "w0", l));
            Assert.True(shares[$"w{workers - 1}"] > 0, "the victim held no partition when killed");
            victim.KillHard();

            // The writer's wait covers every partition, so it returns only after the victim's were taken over and applied.
            var last = await writer.ReadUntilAsync(l => l.StartsWith("SYNCED", StringComparison.Ordinal) || l.StartsWith("NOT-SYNCED", StringComparison.Ordinal), l => Track(shares, "w0", l), TimeSpan.FromSeconds(150));
            Assert.Equal("SYNCED", last);
        }
        finally
        {
            foreach (var process in processes)
            {
                process.Dispose();
            }
        }

        // No lease is held by the dead worker any more, and every partition cursor reached the head of the log.
        var head = (long)(await Database.ScalarAsync("SELECT last_lsn FROM crossstoresync.log_head"))!;
        Assert.Equal(Rounds * Keys, head);
        Assert.Equal(0L, await Database.ScalarAsync($"SELECT count(*) FROM crossstoresync.partition_cursors WHERE owner = 'w{workers - 1}' AND lease_until > now()"));

        // Every store holds exactly the source's newest version of every key: nothing lost, nothing regressed.
        await using var dataSource = NpgsqlDataSource.Create(Database.ConnectionString);
        var source = new PostgresDocumentStore(dataSource);
        var expected = await DigestsAsync(source);
        Assert.Equal(Keys, expected.Count);
        foreach (var entry in expected.Values)
        {
            Assert.Equal(Rounds - 1, await RoundOfAsync(source, entry.Key.Id));
        }

        await using var vectors = new SqliteVectorStore(Path.Combine(Dir, "vectors.db"), "vectors");
        await using var graph = new SqliteGraphStore(Path.Combine(Dir, "graph.db"), "graph");
        foreach (ISyncStore replica in new ISyncStore[] { vectors, graph })
        {
            var held = await DigestsAsync(replica);
            Assert.Equal(expected.Keys.Order(), held.Keys.Order());
            Assert.All(expected, e => Assert.Equal((e.Value.Version, e.Value.RecordedHash), (held[e.Key].Version, held[e.Key].RecordedHash)));
        }
    }

    private static void Track(Dictionary<string, int> shares, string worker, string line)
    {
        if (line.StartsWith("PARTITIONS vectors ", StringComparison.Ordinal))
        {
            lock (shares)
            {
                shares[worker] = int.Parse(line["PARTITIONS vectors ".Length..], CultureInfo.InvariantCulture);
            }
        }
    }

    private static async Task<Dictionary<string, EntityDigest>> DigestsAsync(ISyncStore store)
    {
        var result = new Dictionary<string, EntityDigest>();
        await foreach (var d in store.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            result[d.Key.Id] = d;
        }

        return result;
    }

    private static async Task<int> RoundOfAsync(IDocumentStore source, string id)
    {
        var read = await source.ReadAsync(new EntityKey("items", id), CancellationToken.None);
        using var json = System.Text.Json.JsonDocument.Parse(read!.Entity.Document);
        return json.RootElement.GetProperty("round").GetInt32();
    }
}
