using System.Threading.Channels;
using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.PostgreSql.Tests.Support;

/// <summary>
/// An engine built from a service collection and started as a host would, with every engine event recorded from
/// before the start, so tests wait on the library's own signals (events, tickets) instead of sleeping.
/// </summary>
public sealed class EngineHost : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly IHostedService[] _hosted;
    private readonly Channel<SyncEvent> _events = Channel.CreateUnbounded<SyncEvent>();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<SyncEvent> _seen = [];
    private bool _disposed;

    private EngineHost(ServiceProvider provider)
    {
        _provider = provider;
        _hosted = provider.GetServices<IHostedService>().ToArray();
        // SubscribeAsync registers at once, before the engine starts, so no event is missed.
        var subscription = Manager.SubscribeAsync(_stop.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in subscription)
                {
                    await _events.Writer.WriteAsync(e);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    public IServiceProvider Services => _provider;

    public ISyncManager Manager => _provider.GetRequiredService<ISyncManager>();

    public static async Task<EngineHost> StartAsync(Action<ICrossStoreSyncBuilder> stores, Action<CrossStoreSyncOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var builder = services.AddCrossStoreSync(o =>
        {
            o.AddCollection("items", 4);
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(5);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(50);
            o.PollInterval = TimeSpan.FromMilliseconds(50);
            o.PartitionLeaseDuration = TimeSpan.FromSeconds(3);
            configure?.Invoke(o);
        });
        stores(builder);
        var host = new EngineHost(services.BuildServiceProvider());

        foreach (var hosted in host._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return host;
    }

    /// <summary>Waits for an event (seen before or after the call) matching <paramref name="match"/>.</summary>
    public async Task<SyncEvent> WaitForEventAsync(Func<SyncEvent, bool> match, TimeSpan timeout)
    {
        lock (_seen)
        {
            if (_seen.FirstOrDefault(match) is { } old)
            {
                _seen.Remove(old);
                return old;
            }
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var e = await _events.Reader.ReadAsync(cts.Token);
                if (match(e))
                {
                    return e;
                }

                lock (_seen)
                {
                    _seen.Add(e);
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"No matching engine event within {timeout}. Seen: {string.Join(" | ", _seen.TakeLast(10).Select(e => $"{e.Kind} {e.Store} {e.Message}"))}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var hosted in _hosted.Reverse())
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _stop.CancelAsync();
        await _provider.DisposeAsync();
    }
}
