using Microsoft.Data.Sqlite;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>What cursors cannot heal: diverged sources compared by Merkle trees, a reset log, a peer restored from a backup.</summary>
public sealed class RepairTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(2);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static async Task<List<(string Id, long Version, UInt128 Hash, bool Deleted)>> DumpAsync(TestNode node)
    {
        var log = await node.Writer.GetLogAsync();
        var page = await log.ScanStateDigestsAsync("notes", CrossStoreSync.Model.BucketRange.All, null, 100_000, CancellationToken.None);
        return page.Select(d => (d.Id, d.Version.Value, d.ContentHash, d.Deleted)).OrderBy(d => d.Id, StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task Merkle_repair_pulls_only_what_differs_and_the_sources_converge()
    {
        // No pull loops: the two sources diverge and only repair brings them together.
        var a = await _cluster.StartAsync(1, p => p.Peers[0].Pull = false);
        var b = await _cluster.StartAsync(2, p => p.Peers[0].Pull = false);
        var shared = Enumerable.Range(0, 400).Select(i => Note("s" + i, "shared " + i)).ToArray();
        await a.Manager.WriteBatchAsync(shared);
        var fromA = await b.Peering.RepairAsync(1);
        Assert.Equal(400, fromA.Written);

        // Drift: a few entities each side alone has, one edited on each side, one deleted on a.
        await a.Manager.WriteBatchAsync([Note("only-a", "a"), Note("s1", "edited on a")]);
        await b.Manager.WriteBatchAsync([Note("only-b", "b"), Note("s2", "edited on b")]);
        await a.Manager.DeleteAsync(new CrossStoreSync.Model.EntityKey("notes", "s3"));

        var atB = await b.Peering.RepairAsync(1);
        var atA = await a.Peering.RepairAsync(2);
        Assert.Equal(3, atB.Written); // only-a, s1, the delete of s3
        Assert.Equal(2, atA.Written); // only-b, s2
        Assert.Equal(await DumpAsync(a), await DumpAsync(b));
        Assert.True((await b.StateAsync("s3"))!.Change.Kind == CrossStoreSync.Model.ChangeKind.Delete);

        // Only the differing leaves and entities travel: a small fraction of a full transfer of 400 entities.
        Assert.True(atB.RoundTrips <= 8, $"{atB.RoundTrips} round trips");
        Assert.True(atB.BytesReceived < fromA.BytesReceived / 2, $"repair received {atB.BytesReceived} bytes; the first full pull {fromA.BytesReceived}");

        var again = await b.Peering.RepairAsync(1);
        Assert.Equal(0, again.Written);
        Assert.All(again.Collections, c => Assert.Equal(0, c.DifferingLeaves));
    }

    [Fact]
    public async Task A_peer_whose_log_was_reset_is_detected_and_compared_by_merkle_trees()
    {
        var a = await _cluster.StartAsync(1);
        var b = await _cluster.StartAsync(2);
        var ticket = await a.Manager.WriteBatchAsync(Enumerable.Range(0, 10).Select(i => Note("k" + i, "v1")).ToArray());
        Assert.True(await a.Peering.WaitForReplicationAsync(ticket, [2], TestCluster.Wait));
        var oldLog = b.StatusOf(1).LogId;

        // Node 1 loses its files and starts over: a new log whose positions reuse the old numbers.
        await a.StopAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_cluster[1].Directory, recursive: true);
        a = await _cluster.StartAsync(1);
        await a.Manager.WriteBatchAsync(Enumerable.Range(0, 12).Select(i => Note("fresh" + i, "after the reset")).ToArray());

        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        var status = b.StatusOf(1);
        Assert.NotEqual(oldLog, status.LogId);
        Assert.NotNull(await b.StateAsync("fresh11"));
        Assert.NotNull(await b.StateAsync("k9")); // kept: b's own copy, and a pulls it back from b

        await a.Peering.SyncNowAsync(2).WaitAsync(TestCluster.Wait);
        Assert.NotNull(await a.StateAsync("k9"));
    }

    [Fact]
    public async Task A_peer_restored_from_an_older_copy_is_detected_by_the_fingerprint_at_the_cursor()
    {
        var a = await _cluster.StartAsync(1);
        var b = await _cluster.StartAsync(2);
        var first = await a.Manager.WriteBatchAsync(Enumerable.Range(0, 5).Select(i => Note("k" + i, "v1")).ToArray());
        Assert.True(await a.Peering.WaitForReplicationAsync(first, [2], TestCluster.Wait));
        await a.StopAsync();
        SqliteConnection.ClearAllPools();
        var backup = _cluster[1].Directory + ".backup";
        CopyDirectory(_cluster[1].Directory, backup);

        a = await _cluster.StartAsync(1);
        var second = await a.Manager.WriteBatchAsync(Enumerable.Range(0, 5).Select(i => Note("k" + i, "v2")).ToArray());
        Assert.True(await a.Peering.WaitForReplicationAsync(second, [2], TestCluster.Wait));
        Assert.Equal(10, b.StatusOf(1).Cursor);

        // Restored from the backup, node 1 writes other changes at the positions b already pulled.
        await a.StopAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_cluster[1].Directory, recursive: true);
        CopyDirectory(backup, _cluster[1].Directory);
        a = await _cluster.StartAsync(1);
        await a.Manager.WriteBatchAsync(Enumerable.Range(0, 5).Select(i => Note("other" + i, "after restore")).ToArray());

        await b.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        Assert.NotNull(await b.StateAsync("other4")); // a cursor-only puller would have skipped positions 6..10
        Assert.Contains("v2", System.Text.Encoding.UTF8.GetString((await b.StateAsync("k0"))!.Change.Entity!.Document.Span), StringComparison.Ordinal);
        await a.Peering.SyncNowAsync(2).WaitAsync(TestCluster.Wait);
        Assert.Contains("v2", System.Text.Encoding.UTF8.GetString((await a.StateAsync("k0"))!.Change.Entity!.Document.Span), StringComparison.Ordinal);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }
}
