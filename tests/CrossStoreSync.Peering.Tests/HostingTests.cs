using System.Text;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Replication;
using CrossStoreSync.Retention;
using CrossStoreSync.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>Serving from an ASP.NET Core app, custom resolvers, the health check and log retention with peers.</summary>
public sealed class HostingTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(2);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task An_aspnet_core_app_serves_its_side_with_MapCrossStoreSyncPeering()
    {
        var member = _cluster[1];
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{member.Port}");
        builder.Services.AddCrossStoreSync(o => o.AddCollection("notes", 4))
            .UseSqlite(o => o.DirectoryPath = member.Directory)
            .AddPeering(o =>
            {
                o.NodeId = 1;
                o.SigningKey = member.PrivateKey;
                o.Peers.Add(new PeerOptions { NodeId = 2, Url = $"http://127.0.0.1:{_cluster[2].Port}", PublicKey = _cluster[2].PublicKey });
            });
        await using var app = builder.Build();
        app.MapCrossStoreSyncPeering();
        await app.StartAsync();
        try
        {
            var ticket = await app.Services.GetRequiredService<ISyncManager>().WriteAsync(Note("x", "served by the app"));
            var node2 = await _cluster.StartAsync(2);
            Assert.True(await app.Services.GetRequiredService<IPeerReplication>().WaitForReplicationAsync(ticket, [2], TestCluster.Wait));
            Assert.NotNull(await node2.StateAsync("x"));
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task A_custom_resolver_merges_concurrent_edits_and_both_nodes_keep_the_merge()
    {
        void Union(PeeringOptions o) => o.ConflictResolvers["notes"] = new TagUnion();
        var a = await _cluster.StartAsync(1, Union);
        await a.Manager.WriteAsync(Tagged("x", "red"));
        await a.StopAsync();
        var b = await _cluster.StartAsync(2, Union);
        await b.Manager.WriteAsync(Tagged("x", "blue"));
        await b.StopAsync();

        a = await _cluster.StartAsync(1, Union);
        b = await _cluster.StartAsync(2, Union);
        await a.Peering.SyncNowAsync(2);
        await b.Peering.SyncNowAsync(1);
        await a.Peering.SyncNowAsync(2);

        var atA = await a.StateAsync("x");
        var atB = await b.StateAsync("x");
        Assert.Equal(atA!.Change.ContentHash, atB!.Change.ContentHash);
        Assert.Equal("blue,red", Tags(atA.Change.Entity!));
        // Whichever node met the other's edit first resolved it; the other took the merge, which has seen both.
        var conflicts = (await a.Peering.GetConflictsAsync("notes", "x")).Concat(await b.Peering.GetConflictsAsync("notes", "x")).ToList();
        Assert.Contains(conflicts, c => c.Resolution == ConflictResolutionKind.Resolved);
    }

    [Fact]
    public async Task The_health_check_reports_a_failing_peer()
    {
        var node = await _cluster.StartAsync(1, configure: services => services.AddHealthChecks().AddCrossStoreSyncPeering());
        var health = node.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal(HealthStatus.Degraded, await WaitForStatusAsync(node, health, HealthStatus.Degraded)); // node 2 is down

        await _cluster.StartAsync(2);
        await node.Peering.SyncNowAsync(2);
        var report = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, report.Entries["crossstoresync-peers"].Status);
    }

    [Fact]
    public async Task Log_truncation_waits_for_what_a_peer_has_not_pulled()
    {
        var clockA = new OffsetTimeProvider();
        var clockB = new OffsetTimeProvider();
        void Retention(CrossStoreSync.Configuration.CrossStoreSyncOptions o) => o.Retention.KeepAppliedFor = TimeSpan.FromMinutes(1);
        var a = await _cluster.StartAsync(1, sync: Retention, time: clockA);
        var b = await _cluster.StartAsync(2, sync: Retention, time: clockB);
        var first = await a.Manager.WriteBatchAsync(Enumerable.Range(0, 10).Select(i => Note("k" + i, "first")).ToArray());
        Assert.True(await a.Peering.WaitForReplicationAsync(first, [2], TestCluster.Wait));
        await b.StopAsync();
        var second = await a.Manager.WriteBatchAsync(Enumerable.Range(0, 10).Select(i => Note("m" + i, "while node 2 is down")).ToArray());
        Assert.Equal(SyncWaitOutcome.Synced, await a.Manager.WaitForSyncAsync(second, TestCluster.Wait));

        var retention = a.Services.GetRequiredService<LogRetention>();
        await retention.RunRoundAsync(CancellationToken.None); // records when the entries were appended
        clockA.Offset = clockB.Offset = TimeSpan.FromMinutes(2);
        var held = await retention.RunRoundAsync(CancellationToken.None);
        Assert.Equal(10, held.TruncatedThrough); // node 2 acknowledged 10; its own replicas are at 20
        var log = (IChangeLogRetention)await a.Writer.GetLogAsync();
        Assert.Equal(10, await log.GetTruncatedThroughAsync(CancellationToken.None));

        b = await _cluster.StartAsync(2, sync: Retention, time: clockB);
        Assert.True(await a.Peering.WaitForReplicationAsync(second, [2], TestCluster.Wait));
        Assert.NotNull(await b.StateAsync("m9"));
        var released = await retention.RunRoundAsync(CancellationToken.None);
        Assert.Equal(20, released.TruncatedThrough);
    }

    private static async Task<HealthStatus> WaitForStatusAsync(TestNode node, HealthCheckService health, HealthStatus expected)
    {
        using var timeout = new CancellationTokenSource(TestCluster.Wait);
        while (true)
        {
            var report = await health.CheckHealthAsync(timeout.Token);
            if (report.Entries["crossstoresync-peers"].Status == expected)
            {
                return expected;
            }

            // Each SyncNow is a real (failing) exchange that the pull loop records.
            await Assert.ThrowsAnyAsync<Exception>(() => node.Peering.SyncNowAsync(2, timeout.Token).WaitAsync(TimeSpan.FromSeconds(5), timeout.Token));
        }
    }

    private static SyncEntity Tagged(string id, string tags) => SyncEntity.FromJson(new EntityKey("notes", id), $$"""{"tags":"{{tags}}"}""", new float[] { 1, 2, 3, 4 });

    private static string Tags(SyncEntity entity) => System.Text.Json.JsonDocument.Parse(entity.Document).RootElement.GetProperty("tags").GetString()!;

    /// <summary>Merges comma-separated tags: a set union, so merging merges reaches a fixed point.</summary>
    private sealed class TagUnion : IConflictResolver
    {
        public ConflictResolution Resolve(ConflictingState older, ConflictingState newer)
        {
            if (older.Entity is null || newer.Entity is null)
            {
                return ConflictResolution.KeepNewer;
            }

            var tags = Tags(older.Entity).Split(',').Union(Tags(newer.Entity).Split(',')).Order(StringComparer.Ordinal);
            return ConflictResolution.Merge(Tagged(newer.Key.Id, string.Join(',', tags)));
        }
    }
}
