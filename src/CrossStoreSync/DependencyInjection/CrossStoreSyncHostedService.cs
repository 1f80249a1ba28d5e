using CrossStoreSync.Sync;
using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.DependencyInjection;

/// <summary>Starts the engine (initialise stores, resolve pending entries, start dispatchers) with the host and stops it with the host.</summary>
internal sealed class CrossStoreSyncHostedService(SyncEngine engine) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => engine.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => engine.StopAsync(cancellationToken);
}
