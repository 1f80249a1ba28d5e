using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

/// <summary>A new engine over the same log and stores, as a restarted process over durable ones.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Replica_that_was_down_when_the_process_stopped_catches_up_after_restart()
    {
        SyncTicket last = default;
        await using var first = await TestEngine.StartAsync();
        first.VectorFaults.GoDown();
        for (var i = 0; i < 20; i++)
        {
            last = await first.Manager.WriteAsync(Items.Entity($"r{i}"));
        }

        await first.WaitForReplicaAsync("graph", last.Lsns.Last);
        await first.StopAsync();
        Assert.Equal(0, await first.Vectors.CountAsync(Items.Collection, CancellationToken.None));

        first.VectorFaults.ComeBack();
        await using var second = await TestEngine.StartAsync(restartOf: first);
        Assert.Equal(SyncWaitOutcome.Synced, await second.Manager.WaitForSyncAsync(last, TestEngine.Timeout));
        for (var i = 0; i < 20; i++)
        {
            await second.AssertReplicasMatchSourceAsync(Items.Key($"r{i}"));
        }
    }

    [Fact]
    public async Task Write_left_pending_by_a_stopped_process_is_resolved_before_replicas_resume()
    {
        await using var first = await TestEngine.StartAsync(o => o.SourceRetryAttempts = 0);
        first.SourceFaults.GoDown();
        var ex = await Assert.ThrowsAsync<SourceUnavailableException>(async () => await first.Manager.WriteAsync(Items.Entity("p")));
        await first.StopAsync();
        foreach (var store in first.AllStores)
        {
            Assert.Null(store.GetVersion(Items.Key("p")));
        }

        first.SourceFaults.ComeBack();
        await using var second = await TestEngine.StartAsync(restartOf: first);

        // Start-up itself resolves pending entries: the source holds the write once start returns.
        Assert.Equal(ex.Ticket.Version, second.Source.GetVersion(Items.Key("p")));
        Assert.Equal(SyncWaitOutcome.Synced, await second.Manager.WaitForSyncAsync(ex.Ticket, TestEngine.Timeout));
        await second.AssertReplicasMatchSourceAsync(Items.Key("p"));
    }

    [Fact]
    public async Task Restarted_process_with_a_clock_behind_still_issues_newer_versions()
    {
        var ahead = new ManualTimeProvider(DateTimeOffset.UtcNow + TimeSpan.FromDays(1));
        await using var first = await TestEngine.StartAsync(time: ahead);
        var old = await first.WriteAndSyncAsync(Items.Entity("a", revision: 1));
        await first.StopAsync();

        var behind = new ManualTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromDays(1));
        await using var second = await TestEngine.StartAsync(restartOf: first, time: behind);
        var update = await second.WriteAndSyncAsync(Items.Entity("a", revision: 2));

        // Without observing the log's newest version, this write would be older and every version guard would drop it.
        Assert.True(update.Version > old.Version, $"{update.Version} is not after {old.Version}.");
        foreach (var store in second.AllStores)
        {
            Assert.Equal(update.Version, store.GetVersion(Items.Key("a")));
        }

        var stored = await second.Source.ReadAsync(Items.Key("a"), CancellationToken.None);
        Assert.Contains("\"rev\":2", stored!.Entity.DocumentText, StringComparison.Ordinal);
    }
}
