using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.SurrealDb.Tests.Support;

/// <summary>Builds and runs an engine from a service collection, as a host would.</summary>
public sealed class TestEngine : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly IHostedService[] _hosted;

    private TestEngine(ServiceProvider provider)
    {
        _provider = provider;
        _hosted = provider.GetServices<IHostedService>().ToArray();
    }

    public IServiceProvider Services => _provider;

    public ISyncManager Manager => _provider.GetRequiredService<ISyncManager>();

    public static async Task<TestEngine> StartAsync(Action<ICrossStoreSyncBuilder> stores, Action<CrossStoreSyncOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var builder = services.AddCrossStoreSync(o =>
        {
            o.AddCollection("items", 4);
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(5);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(50);
            o.PollInterval = TimeSpan.FromMilliseconds(50);
            configure?.Invoke(o);
        });
        stores(builder);
        var engine = new TestEngine(services.BuildServiceProvider());
        foreach (var hosted in engine._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return engine;
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

/// <summary>A temporary folder deleted after the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "css-surreal-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open on a slow disposal is left for the OS temp cleaner.
        }
    }
}
