using CrossStoreSync.Peering.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Peering.Server;

/// <summary>
/// The library's own Kestrel listener for console apps (<see cref="PeeringOptions.ListenUrl"/>): a minimal web app that
/// serves only the peer endpoints, with the handlers of the host's container. Does nothing when no URL is set.
/// </summary>
internal sealed class PeerListener(IOptions<PeeringOptions> options, PeerServer server) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>The address the listener is bound to (with the real port when the URL asked for port 0).</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var url = options.Value.ListenUrl;
        if (url is null)
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        var app = builder.Build();
        PeeringServiceCollectionExtensions.MapPeering(app, server, options.Value.PathPrefix);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        Address = bound is null ? new Uri(url) : new Uri(bound);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }
}
