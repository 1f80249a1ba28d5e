using System.Globalization;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.SurrealDb.Tests.Support;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>
/// A real child process (tests/CrossStoreSync.CrashHost, mode surreal-load) writes through a SurrealDB source of truth
/// with a SQLite log and replicas, and is killed with SIGKILL mid-load; a restart must converge with every
/// acknowledged write present in SurrealDB and in the replicas.
/// </summary>
[Collection(SurrealDbCollection.Name)]
public sealed class CrashTests(SurrealDbHost host) : IDisposable
{
    private static readonly CollectionDefinition[] Collections = [new("items", 8, VectorDistance.Cosine)];
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Process_killed_during_writes_to_SurrealDB_converges_after_restart_with_every_acknowledged_write()
    {
        var options = host.NewDatabaseOptions("surrealdb");
        string[] target = [_dir.Path, options.Endpoint!.ToString(), options.Namespace, options.Database];
        var acked = new Dictionary<string, long>(StringComparer.Ordinal);
        var killAfter = Random.Shared.Next(200, 600);
        using (var load = ChildProcess.Start(["surreal-load", .. target]))
        {
            await load.ReadUntilAsync(l => l == "READY");
            var count = 0;
            await load.ReadUntilAsync(l => ++count >= killAfter, line =>
            {
                var parts = line.Split(' ');
                if (parts[0] == "ACK")
                {
                    acked[parts[1]] = Math.Max(acked.GetValueOrDefault(parts[1]), long.Parse(parts[2], CultureInfo.InvariantCulture));
                }
            });
            load.KillHard();
        }

        using (var recover = ChildProcess.Start(["surreal-recover", .. target]))
        {
            Assert.Equal("Synced", await recover.ReadUntilAsync(_ => true));
            Assert.Equal(0, await recover.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var source = host.NewStore(options);
        await using var log = new SqliteChangeLog(_dir.File("source.db"));
        await log.InitializeAsync(CancellationToken.None);
        await using var vectors = new SqliteVectorStore(_dir.File("vectors.db"));
        await vectors.InitializeAsync(Collections, CancellationToken.None);
        await using var graph = new SqliteGraphStore(_dir.File("graph.db"));
        await graph.InitializeAsync(Collections, CancellationToken.None);

        Assert.NotEmpty(acked);
        var held = (await source.ReadDigestsAsync("items", acked.Keys.ToArray(), CancellationToken.None)).ToDictionary(d => d.Key.Id);
        foreach (var (id, version) in acked)
        {
            Assert.True(held.TryGetValue(id, out var digest), $"Acknowledged write of {id} is missing from SurrealDB.");
            Assert.True(digest.Version.Value >= version, $"SurrealDB holds {id} at {digest.Version}, older than the acknowledged {new HlcTimestamp(version)}.");
        }

        // Every replica record matches the source's version, hash and projection.
        var all = new List<EntityDigest>();
        await foreach (var d in source.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            all.Add(d);
        }

        foreach (var replica in new ISyncStore[] { vectors, graph })
        {
            var copies = (await replica.ReadDigestsAsync("items", all.Select(d => d.Key.Id).ToArray(), CancellationToken.None)).ToDictionary(d => d.Key.Id);
            Assert.Equal(all.Count, copies.Count);
            foreach (var d in all)
            {
                var entity = (await source.ReadAsync(d.Key, CancellationToken.None))!.Entity;
                Assert.Equal(d.Version, copies[d.Key.Id].Version);
                Assert.Equal(d.RecordedHash, copies[d.Key.Id].RecordedHash);
                Assert.Equal(ProjectionHash.Compute(entity, replica.Kind), copies[d.Key.Id].ProjectionHash);
            }
        }

        Assert.Empty(await log.ReadPendingAsync(CancellationToken.None));
    }
}
