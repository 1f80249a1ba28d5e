using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Benchmarks;

/// <summary>Starts an engine from a service collection the way a host does.</summary>
internal sealed class EngineHost : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly IHostedService[] _hosted;

    private EngineHost(ServiceProvider provider)
    {
        _provider = provider;
        _hosted = provider.GetServices<IHostedService>().ToArray();
    }

    public IServiceProvider Services => _provider;

    public ISyncManager Manager => _provider.GetRequiredService<ISyncManager>();

    public static EngineHost Start(Action<ICrossStoreSyncBuilder> stores, Action<CrossStoreSyncOptions>? configure = null)
    {
        var services = new ServiceCollection();
        var builder = services.AddCrossStoreSync(o =>
        {
            o.AddCollection(BenchmarkData.Collection, BenchmarkData.Dimension);
            o.AddCollection("topics");
            configure?.Invoke(o);
        });
        stores(builder);
        var host = new EngineHost(services.BuildServiceProvider());
        foreach (var hosted in host._hosted)
        {
            hosted.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        }

        return host;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var hosted in _hosted.Reverse())
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _provider.DisposeAsync();
    }
}
