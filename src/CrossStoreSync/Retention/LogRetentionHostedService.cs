using Microsoft.Extensions.Hosting;

namespace CrossStoreSync.Retention;

/// <summary>Runs the log retention task with the host; registered after the engine's hosted service, so it starts after it and stops before it.</summary>
internal sealed class LogRetentionHostedService(LogRetention retention) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => retention.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => retention.StopAsync(cancellationToken);
}
