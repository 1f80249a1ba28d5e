using CrossStoreSync.Errors;
using Microsoft.Data.Sqlite;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>An authenticated peer that sends what this node must not accept: refused with the reason, cursor held.</summary>
public sealed class RejectionTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(2);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static async Task<PeerStatus> RefusedAsync(TestNode node, int peer)
    {
        using var timeout = new CancellationTokenSource(TestCluster.Wait);
        while (node.StatusOf(peer).LastErrorCode != PeerErrorCode.Rejected)
        {
            await Assert.ThrowsAnyAsync<Exception>(() => node.Peering.SyncNowAsync(peer, timeout.Token).WaitAsync(TimeSpan.FromSeconds(5), timeout.Token));
        }

        return node.StatusOf(peer);
    }

    [Fact]
    public async Task A_collection_the_node_does_not_exchange_with_the_sender_is_refused()
    {
        // Node 1 is (mis)configured to send "secret" to node 2; node 2 exchanges only "notes" with it.
        var sender = await _cluster.StartAsync(1, p => p.Peers[0].Collections.Add("secret"));
        await sender.Manager.WriteAsync(CrossStoreSync.Model.SyncEntity.FromJson(new CrossStoreSync.Model.EntityKey("secret", "s1"), """{"pin":1234}"""));
        var receiver = await _cluster.StartAsync(2);

        var status = await RefusedAsync(receiver, 1);
        Assert.Contains("collection 'secret' is not exchanged", status.LastError, StringComparison.Ordinal);
        Assert.Equal(0, status.Cursor);
        Assert.Equal(0, await receiver.HeadAsync());
    }

    [Fact]
    public async Task An_entity_larger_than_this_node_accepts_is_refused_with_the_field_named()
    {
        var sender = await _cluster.StartAsync(1);
        await sender.Manager.WriteAsync(Note("big", new string('x', 5000)));
        var receiver = await _cluster.StartAsync(2, sync: o => o.MaxDocumentBytes = 1024);

        var status = await RefusedAsync(receiver, 1);
        Assert.Contains("Invalid", status.LastError, StringComparison.Ordinal);
        Assert.Contains("MaxDocumentBytes", status.LastError, StringComparison.Ordinal);
        Assert.Equal(0, await receiver.HeadAsync());
    }

    [Fact]
    public async Task A_state_whose_content_does_not_match_its_hash_is_refused()
    {
        var sender = await _cluster.StartAsync(1);
        await sender.Manager.WriteAsync(Note("x", "genuine"));
        await sender.StopAsync();

        // The sender's stored hash no longer matches the content it holds (a damaged or forged row).
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(_cluster[1].Directory, "source.db")}"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE documents SET document = CAST('{\"text\":\"forged\"}' AS BLOB) WHERE id = 'x'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        SqliteConnection.ClearAllPools();
        await _cluster.StartAsync(1);
        var receiver = await _cluster.StartAsync(2);
        var status = await RefusedAsync(receiver, 1);
        Assert.Contains("Hash", status.LastError, StringComparison.Ordinal);
        Assert.Contains("content hashes to", status.LastError, StringComparison.Ordinal);
        Assert.Null(await receiver.StateAsync("x"));
    }

    [Fact]
    public async Task A_version_too_far_ahead_of_this_nodes_clock_is_refused_until_the_clock_allows_it()
    {
        // Node 1's clock ran ten minutes ahead while it wrote, then was corrected: its versions stay in the future.
        var skewed = new OffsetTimeProvider { Offset = TimeSpan.FromMinutes(10) };
        var sender = await _cluster.StartAsync(1, time: skewed);
        await sender.Manager.WriteAsync(Note("x", "from the future"));
        skewed.Offset = TimeSpan.Zero;

        var receiver = await _cluster.StartAsync(2);
        var status = await RefusedAsync(receiver, 1);
        Assert.Contains("ClockAhead", status.LastError, StringComparison.Ordinal);
        Assert.Contains("ahead of this node's clock", status.LastError, StringComparison.Ordinal);
        Assert.Equal(0, status.Cursor);
        Assert.Null(await receiver.StateAsync("x"));
    }
}
