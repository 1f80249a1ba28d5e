using System.Globalization;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>Kills a real child process with SIGKILL in the middle of work and checks that a restart converges.</summary>
public sealed class CrashTests : IDisposable
{
    private static readonly CollectionDefinition[] Collections = [new("items", 8, VectorDistance.Cosine)];
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Process_killed_during_sustained_writes_converges_after_restart_with_every_acknowledged_write()
    {
        var acked = new Dictionary<string, long>(StringComparer.Ordinal);
        var killAfter = Random.Shared.Next(300, 1500);
        using (var load = ChildProcess.Start("load", _dir.Path))
        {
            await load.ReadUntilAsync(l => l == "READY");
            var count = 0;
            await load.ReadUntilAsync(l => ++count >= killAfter, line =>
            {
                var parts = line.Split(' ');
                if (parts[0] == "ACK")
                {
                    var version = long.Parse(parts[2], CultureInfo.InvariantCulture);
                    acked[parts[1]] = Math.Max(acked.GetValueOrDefault(parts[1]), version);
                }
            });
            load.KillHard();
        }

        using (var recover = ChildProcess.Start("recover", _dir.Path))
        {
            Assert.Equal("Synced", await recover.ReadUntilAsync(_ => true));
            Assert.Equal(0, await recover.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using var log = new SqliteChangeLog(_dir.File("source.db"));
        await log.InitializeAsync(CancellationToken.None);
        await using var vectors = new SqliteVectorStore(_dir.File("vectors.db"));
        await vectors.InitializeAsync(Collections, CancellationToken.None);
        await using var graph = new SqliteGraphStore(_dir.File("graph.db"));
        await graph.InitializeAsync(Collections, CancellationToken.None);

        Assert.NotEmpty(acked);
        var ids = acked.Keys.ToArray();
        var source = (await log.Documents.ReadDigestsAsync("items", ids, CancellationToken.None)).ToDictionary(d => d.Key.Id);
        foreach (var (id, version) in acked)
        {
            Assert.True(source.TryGetValue(id, out var digest), $"Acknowledged write of {id} is missing from the source.");
            Assert.True(digest.Version.Value >= version, $"Source holds {id} at {digest.Version}, older than the acknowledged {new HlcTimestamp(version)}.");
        }

        await AssertReplicasMatchSource(log.Documents, vectors, graph);
        Assert.Empty(await log.ReadPendingAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Process_killed_between_log_append_and_source_write_never_feeds_a_replica_and_recovers()
    {
        var hangAt = Random.Shared.Next(5, 40);
        var acks = 0;
        using (var child = ChildProcess.Start("pending", _dir.Path, hangAt.ToString(CultureInfo.InvariantCulture)))
        {
            await child.ReadUntilAsync(l => l == "IN-WINDOW", l => acks += l.StartsWith("ACK", StringComparison.Ordinal) ? 1 : 0);
            child.KillHard();
        }

        var inWindow = new EntityKey("items", "p" + acks.ToString(CultureInfo.InvariantCulture));
        await using (var log = new SqliteChangeLog(_dir.File("log.db")))
        await using (var docs = new SqliteDocumentStore(_dir.File("docs.db")))
        await using (var vectors = new SqliteVectorStore(_dir.File("vectors.db")))
        await using (var graph = new SqliteGraphStore(_dir.File("graph.db")))
        {
            await log.InitializeAsync(CancellationToken.None);
            await docs.InitializeAsync(Collections, CancellationToken.None);
            await vectors.InitializeAsync(Collections, CancellationToken.None);
            await graph.InitializeAsync(Collections, CancellationToken.None);

            // The process died inside the window: the log holds the change as pending, the source does not.
            var pending = await log.ReadPendingAsync(CancellationToken.None);
            Assert.Equal([inWindow], pending.Select(p => p.Change.Key).ToArray());
            Assert.Null(await docs.ReadAsync(inWindow, CancellationToken.None));
            Assert.Empty(await vectors.ReadDigestsAsync("items", [inWindow.Id], CancellationToken.None));
            Assert.Empty(await graph.ReadDigestsAsync("items", [inWindow.Id], CancellationToken.None));
            await AssertNoReplicaAheadOfSource(docs, vectors);
            await AssertNoReplicaAheadOfSource(docs, graph);
        }

        using (var recover = ChildProcess.Start("recover-pending", _dir.Path))
        {
            Assert.Equal("Synced", await recover.ReadUntilAsync(_ => true));
            Assert.Equal(0, await recover.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using (var log = new SqliteChangeLog(_dir.File("log.db")))
        await using (var docs = new SqliteDocumentStore(_dir.File("docs.db")))
        await using (var vectors = new SqliteVectorStore(_dir.File("vectors.db")))
        await using (var graph = new SqliteGraphStore(_dir.File("graph.db")))
        {
            await log.InitializeAsync(CancellationToken.None);
            await vectors.InitializeAsync(Collections, CancellationToken.None);
            await graph.InitializeAsync(Collections, CancellationToken.None);
            Assert.Empty(await log.ReadPendingAsync(CancellationToken.None));
            Assert.NotNull(await docs.ReadAsync(inWindow, CancellationToken.None));
            await AssertReplicasMatchSource(docs, vectors, graph);
        }
    }

    [Theory]
    [InlineData("TRUNCATING")]
    [InlineData("PURGING")]
    public async Task Process_killed_in_the_middle_of_retention_loses_nothing_acknowledged_and_converges(string killOn)
    {
        // Per key: the newest acknowledged version (upsert or delete), and whether a delete was started after it.
        var acked = new Dictionary<string, (long Version, bool Deleted, bool DeleteStarted)>(StringComparer.Ordinal);
        var signals = 0;
        using (var load = ChildProcess.Start("retention-load", _dir.Path))
        {
            await load.ReadUntilAsync(l => l == "READY");

            // Several rounds in, so truncation and purges have real work, then at the next batch of the chosen kind.
            void Track(string line)
            {
                var parts = line.Split(' ');
                switch (parts[0])
                {
                    case "ACK":
                        acked[parts[1]] = (long.Parse(parts[2], CultureInfo.InvariantCulture), false, false);
                        break;
                    case "DEL-START":
                        acked[parts[1]] = acked.GetValueOrDefault(parts[1]) with { DeleteStarted = true };
                        break;
                    case "DEL":
                        acked[parts[1]] = (long.Parse(parts[2], CultureInfo.InvariantCulture), true, false);
                        break;
                }
            }

            await load.ReadUntilAsync(l => l.StartsWith(killOn, StringComparison.Ordinal) && ++signals >= Random.Shared.Next(5, 30), Track);
            load.KillHard();

            // What the child printed before it died was acknowledged (or, for DEL-START, attempted) too.
            await load.DrainAsync(Track);
        }

        using (var recover = ChildProcess.Start("retention-recover", _dir.Path))
        {
            Assert.Equal("CLEAN", await recover.ReadUntilAsync(l => l is "CLEAN" || l.StartsWith("DIRTY", StringComparison.Ordinal) || l.StartsWith("NOT-SYNCED", StringComparison.Ordinal)));
            Assert.Equal(0, await recover.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using var log = new SqliteChangeLog(_dir.File("source.db"));
        await log.InitializeAsync(CancellationToken.None);
        await using var vectors = new SqliteVectorStore(_dir.File("vectors.db"));
        await vectors.InitializeAsync(Collections, CancellationToken.None);
        await using var graph = new SqliteGraphStore(_dir.File("graph.db"));
        await graph.InitializeAsync(Collections, CancellationToken.None);

        Assert.NotEmpty(acked);
        Assert.True(await log.GetTruncatedThroughAsync(CancellationToken.None) > 0, "The child never truncated its log.");
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_dir.File("source.db")};Pooling=False");
        await connection.OpenAsync();
        foreach (var (id, expected) in acked)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT version, deleted FROM documents WHERE collection = 'items' AND id = $id";
            command.Parameters.AddWithValue("$id", id);
            using var reader = await command.ExecuteReaderAsync();
            if (!await reader.ReadAsync())
            {
                // No row at all: only a delete's tombstone, later purged, explains it.
                Assert.True(expected.Deleted || expected.DeleteStarted, $"{id} was acknowledged at {new HlcTimestamp(expected.Version)} but the source holds nothing.");
                continue;
            }

            var version = reader.GetInt64(0);
            Assert.True(version >= expected.Version, $"The source holds {id} at {new HlcTimestamp(version)}, older than the acknowledged {new HlcTimestamp(expected.Version)}.");
            if (version == expected.Version)
            {
                Assert.Equal(expected.Deleted, reader.GetInt64(1) == 1);
            }
        }

        await AssertReplicasMatchSource(log.Documents, vectors, graph);
        Assert.Empty(await log.ReadPendingAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Process_killed_between_a_rejection_and_its_compensating_write_ends_compensated_after_restart()
    {
        long first, last, requested;
        using (var child = ChildProcess.Start("compensate", _dir.Path))
        {
            var wrote = (await child.ReadUntilAsync(l => l.StartsWith("WROTE ", StringComparison.Ordinal))).Split(' ');
            (first, last) = (long.Parse(wrote[1], CultureInfo.InvariantCulture), long.Parse(wrote[2], CultureInfo.InvariantCulture));
            requested = long.Parse((await child.ReadUntilAsync(l => l.StartsWith("REQUESTED ", StringComparison.Ordinal))).Split(' ')[1], CultureInfo.InvariantCulture);
            child.KillHard();
        }

        var rejected = new EntityKey("items", "c5");
        await using (var log = new SqliteChangeLog(_dir.File("source.db")))
        await using (var vectors = new SqliteVectorStore(_dir.File("vectors.db")))
        {
            await log.InitializeAsync(CancellationToken.None);
            await vectors.InitializeAsync(Collections, CancellationToken.None);

            // Killed with the decision in the log and nothing compensated yet: the source still holds the rejected
            // revision, the vector store the prior one.
            var record = Assert.Single(await log.ListCompensationsAsync(new CompensationQuery(10), CancellationToken.None));
            Assert.Equal((requested, CompensationState.Requested, "vectors"), (record.Lsn, record.State, record.Store));
            Assert.InRange(record.Lsn, first, last);
            var source = await log.Documents.ReadAsync(rejected, CancellationToken.None);
            Assert.Equal(record.Version, source!.Version);
            Assert.Equal(record.Prior.Version, Assert.Single(await vectors.ReadDigestsAsync("items", ["c5"], CancellationToken.None)).Version);
        }

        using (var recover = ChildProcess.Start("compensate-recover", _dir.Path, first.ToString(CultureInfo.InvariantCulture), last.ToString(CultureInfo.InvariantCulture)))
        {
            Assert.Equal("OUTCOME Compensated Compensated", await recover.ReadUntilAsync(l => l.StartsWith("OUTCOME ", StringComparison.Ordinal)));
            Assert.Equal("CLEAN", await recover.ReadUntilAsync(_ => true));
            Assert.Equal(0, await recover.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using var after = new SqliteChangeLog(_dir.File("source.db"));
        await after.InitializeAsync(CancellationToken.None);
        await using var replicaVectors = new SqliteVectorStore(_dir.File("vectors.db"));
        await replicaVectors.InitializeAsync(Collections, CancellationToken.None);
        await using var graph = new SqliteGraphStore(_dir.File("graph.db"));
        await graph.InitializeAsync(Collections, CancellationToken.None);

        // c5 is back at revision 1 everywhere; the nine other keys of the batch kept revision 2.
        var restored = await after.Documents.ReadAsync(rejected, CancellationToken.None);
        Assert.Contains("\"rev\":1", restored!.Entity.DocumentText, StringComparison.Ordinal);
        for (var i = 0; i < 10; i++)
        {
            var entity = await after.Documents.ReadAsync(new EntityKey("items", "c" + i.ToString(CultureInfo.InvariantCulture)), CancellationToken.None);
            Assert.Contains(i == 5 ? "\"rev\":1" : "\"rev\":2", entity!.Entity.DocumentText, StringComparison.Ordinal);
        }

        await AssertReplicasMatchSource(after.Documents, replicaVectors, graph);
        Assert.Empty(await after.ListCompensationsAsync(new CompensationQuery(10) { State = CompensationState.Requested }, CancellationToken.None));
    }

    private static async Task AssertReplicasMatchSource(IDocumentStore source, params ISyncStore[] replicas)
    {
        var sourceDigests = new Dictionary<string, EntityDigest>(StringComparer.Ordinal);
        await foreach (var d in source.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            sourceDigests[d.Key.Id] = d;
            Assert.Equal(d.RecordedHash, d.ProjectionHash);
        }

        foreach (var replica in replicas)
        {
            var seen = 0;
            await foreach (var d in replica.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
            {
                seen++;
                Assert.True(sourceDigests.TryGetValue(d.Key.Id, out var s), $"{replica.Name} holds {d.Key} which the source does not.");
                Assert.Equal(s.Version, d.Version);
                Assert.Equal(s.RecordedHash, d.RecordedHash);
                var entity = (await source.ReadAsync(d.Key, CancellationToken.None))!.Entity;
                Assert.Equal(ProjectionHash.Compute(entity, replica.Kind), d.ProjectionHash);
            }

            Assert.Equal(sourceDigests.Count, seen);
        }
    }

    private static async Task AssertNoReplicaAheadOfSource(IDocumentStore source, ISyncStore replica)
    {
        await foreach (var d in replica.ScanDigestsAsync("items", BucketRange.All, CancellationToken.None))
        {
            var s = await source.ReadDigestsAsync("items", [d.Key.Id], CancellationToken.None);
            Assert.True(s.Count == 1 && s[0].Version >= d.Version, $"{replica.Name} holds {d.Key} at {d.Version}, which the source does not hold.");
        }
    }
}
