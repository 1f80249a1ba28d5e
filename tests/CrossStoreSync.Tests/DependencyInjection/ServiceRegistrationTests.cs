using CrossStoreSync.Configuration;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Testing.Stores;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Tests.DependencyInjection;

public sealed class ServiceRegistrationTests
{
    [Fact]
    public async Task Registering_twice_gives_one_engine_one_engine_and_one_retention_hosted_service_and_two_replicas()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(TestEngine.FastOptions).UseInMemoryStores();
        services.AddCrossStoreSync(o => o.AddCollection("notes")).UseInMemoryStores();

        Assert.Single(services, d => d.ServiceType == typeof(ISyncManager));
        Assert.Single(services, d => d.ServiceType == typeof(SyncEngine));
        Assert.Single(services, d => d.ServiceType == typeof(SyncMetrics));
        Assert.Single(services, d => d.ServiceType == typeof(CrossStoreSync.Retention.LogRetention));
        Assert.Equal(2, services.Count(d => d.ServiceType == typeof(IHostedService)));
        Assert.Single(services, d => d.ServiceType == typeof(IValidateOptions<CrossStoreSyncOptions>));

        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToArray();
        Assert.Equal(["CrossStoreSyncHostedService", "LogRetentionHostedService"], hosted.Select(h => h.GetType().Name));
        foreach (var service in hosted)
        {
            await service.StartAsync(CancellationToken.None);
        }

        try
        {
            var engine = provider.GetRequiredService<SyncEngine>();
            Assert.Same(engine, provider.GetRequiredService<ISyncManager>());
            Assert.Equal(["vectors", "graph"], engine.Dispatchers.Select(d => d.Name));
            Assert.IsType<InMemoryVectorStore>(engine.Dispatchers[0].Store);
            Assert.IsType<InMemoryGraphStore>(engine.Dispatchers[1].Store);

            // Both configure callbacks ran: both collections exist.
            var options = provider.GetRequiredService<IOptions<CrossStoreSyncOptions>>().Value;
            Assert.True(options.TryGetCollection("items", out _));
            Assert.True(options.TryGetCollection("notes", out _));

            var ticket = await engine.WriteAsync(Items.Entity("once"));
            Assert.Equal(SyncWaitOutcome.Synced, await engine.WaitForSyncAsync(ticket, TestEngine.Timeout));
            var status = await engine.GetStatusAsync(Items.Key("once"));
            Assert.Equal(3, status.Stores.Count);
            Assert.True(status.IsSynced);
        }
        finally
        {
            foreach (var service in hosted.Reverse())
            {
                await service.StopAsync(CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task Later_change_log_and_source_registrations_replace_earlier_ones()
    {
        var first = new InMemoryChangeLog();
        var second = new InMemoryChangeLog();
        var services = new ServiceCollection();
        services.AddCrossStoreSync(TestEngine.FastOptions)
            .UseChangeLog(_ => first)
            .UseChangeLog(_ => second)
            .UseSourceOfTruth(_ => new InMemoryDocumentStore("a"))
            .UseSourceOfTruth(_ => new InMemoryDocumentStore("b"));

        await using var provider = services.BuildServiceProvider();
        var engine = provider.GetRequiredService<SyncEngine>();
        await engine.StartAsync(CancellationToken.None);

        var ticket = await engine.WriteAsync(Items.Entity("x"));
        Assert.Equal(SyncWaitOutcome.Synced, await engine.WaitForSyncAsync(ticket, TestEngine.Timeout));
        Assert.Equal(0, first.Count);
        Assert.Equal(1, second.Count);
        Assert.Equal("b", (await engine.GetStatusAsync(Items.Key("x"))).Stores[0].Store);
        Assert.Empty(engine.Dispatchers);
    }

    [Fact]
    public async Task Missing_change_log_fails_start_with_a_message_saying_what_to_call()
    {
        var services = new ServiceCollection();
        services.AddCrossStoreSync(TestEngine.FastOptions).UseSourceOfTruth(_ => new InMemoryDocumentStore());
        await using var provider = services.BuildServiceProvider();

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => provider.GetRequiredService<IHostedService>().StartAsync(CancellationToken.None));
        Assert.Contains("UseChangeLog", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_stores_with_the_same_name_fail_start_naming_it()
    {
        var services = new ServiceCollection();
        services.AddCrossStoreSync(TestEngine.FastOptions)
            .UseChangeLog(_ => new InMemoryChangeLog())
            .UseSourceOfTruth(_ => new InMemoryDocumentStore())
            .AddReplica("one", _ => new InMemoryVectorStore("shared"))
            .AddReplica("two", _ => new InMemoryGraphStore("shared"));
        await using var provider = services.BuildServiceProvider();

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => provider.GetRequiredService<IHostedService>().StartAsync(CancellationToken.None));
        Assert.Contains("'shared'", ex.Message, StringComparison.Ordinal);
    }
}
