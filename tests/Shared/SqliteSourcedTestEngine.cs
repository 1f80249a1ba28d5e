using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Tests.Shared;

/// <summary>Builds and runs an engine from a service collection, as a host would, over a SQLite log and source in a temporary folder.</summary>
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

    /// <summary>Starts an engine whose change log and source of truth live in <paramref name="directory"/>/source.db.</summary>
    public static async Task<TestEngine> StartAsync(string directory, Action<ICrossStoreSyncBuilder> replicas, Action<CrossStoreSyncOptions>? configure = null)
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
        services.AddSingleton(_ => new SqliteChangeLog(Path.Combine(directory, "source.db")));
        builder.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
               .UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents);
        replicas(builder);
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
        SqliteConnection.ClearAllPools();
    }
}

/// <summary>A temporary folder deleted after the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "css-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
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
