using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Peering;
using CrossStoreSync.Peering.Configuration;
using CrossStoreSync.Peering.Server;
using CrossStoreSync.Peering.Telemetry;
using CrossStoreSync.Replication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers peer replication.</summary>
public static class PeeringServiceCollectionExtensions
{
    /// <summary>
    /// Adds peer replication (<see cref="IPeerReplication"/>): this node pulls from every configured peer in the
    /// background and serves its own log to them, from its own listener (<see cref="PeeringOptions.ListenUrl"/>) or from
    /// the host app's endpoints (<see cref="MapCrossStoreSyncPeering"/>). Options are validated when the host starts.
    /// Needs a change log coupled to its source (UseSqlite or UsePostgreSql); any other stops the host at start.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddCrossStoreSync</c>.</param>
    /// <param name="configure">Configures this node's id and key and its peers.</param>
    public static ICrossStoreSyncBuilder AddPeering(this ICrossStoreSyncBuilder builder, Action<PeeringOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddOptions<PeeringOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PeeringOptions>, PeeringOptionsValidator>());

        // The node id is one id: the engine's versions carry it. Read it from a probe of the same configuration so the
        // engine's options do not depend on the peering options (whose validation reads the engine's).
        var probe = new PeeringOptions();
        configure(probe);
        if (probe.NodeId >= 0)
        {
            services.PostConfigure<CrossStoreSyncOptions>(o =>
            {
                if (o.NodeId == 0)
                {
                    o.NodeId = probe.NodeId;
                }
            });
        }

        services.AddHttpClient(PeerReplicationService.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                // A peer whose address changes is found again; the long-polled pull keeps one connection busy.
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(10),
                EnableMultipleHttp2Connections = true,
            })
            .ConfigureHttpClient(c =>
            {
                c.Timeout = Timeout.InfiniteTimeSpan; // every request carries its own deadline
                c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
                c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
            });
        services.TryAddSingleton<PeerDirectory>();
        services.TryAddSingleton(sp => new SessionStore(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<PeeringOptions>>().Value.SessionIdleTimeout));
        services.TryAddSingleton<PeeringMetrics>();
        services.TryAddSingleton<AckTracker>();
        services.TryAddSingleton<RepairRequests>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<CrossStoreSync.Log.ILogRetentionHolder, PeerRetentionHolder>());
        services.TryAddSingleton<PeerServer>();
        services.TryAddSingleton<PeerReplicationService>();
        services.TryAddSingleton<IPeerReplication>(sp => sp.GetRequiredService<PeerReplicationService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PeerListener>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PeerReplicationService>(sp => sp.GetRequiredService<PeerReplicationService>()));
        return builder;
    }

    /// <summary>Serves this node's side of the peer protocol from the app's own endpoints, under <see cref="PeeringOptions.PathPrefix"/>.</summary>
    /// <param name="endpoints">The app's endpoint builder.</param>
    /// <returns>The group's convention builder (add authorization, rate limits, ... as usual).</returns>
    public static RouteGroupBuilder MapCrossStoreSyncPeering(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var server = endpoints.ServiceProvider.GetRequiredService<PeerServer>();
        var prefix = endpoints.ServiceProvider.GetRequiredService<IOptions<PeeringOptions>>().Value.PathPrefix;
        return MapPeering(endpoints, server, prefix);
    }

    internal static RouteGroupBuilder MapPeering(IEndpointRouteBuilder endpoints, PeerServer server, string prefix)
    {
        var group = endpoints.MapGroup(prefix);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.HelloPath, (Func<HttpContext, Task>)server.HelloAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.SessionPath, (Func<HttpContext, Task>)server.SessionAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.ChangesPath, (Func<HttpContext, Task>)server.ChangesAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.WatermarkPath, (Func<HttpContext, Task>)server.WatermarkAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.LeavesPath, (Func<HttpContext, Task>)server.LeavesAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.DigestsPath, (Func<HttpContext, Task>)server.DigestsAsync);
        group.MapPost(CrossStoreSync.Peering.Protocol.PeerProtocol.StatesPath, (Func<HttpContext, Task>)server.StatesAsync);
        return group;
    }

    /// <summary>
    /// Adds a health check named <c>crossstoresync-peers</c>: degraded when this node lags a peer by more than the
    /// limits or the last exchange with a peer failed.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="maxLagEntries">The most unpulled entries tolerated. <value>Default 10,000.</value></param>
    /// <param name="maxLagTime">The longest time behind a peer tolerated. <value>Default 1 minute.</value></param>
    public static IHealthChecksBuilder AddCrossStoreSyncPeering(this IHealthChecksBuilder builder, long maxLagEntries = 10_000, TimeSpan? maxLagTime = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLagEntries);
        var time = maxLagTime ?? TimeSpan.FromMinutes(1);
        return builder.Add(new HealthCheckRegistration(
            "crossstoresync-peers",
            sp => new PeerLagHealthCheck(sp.GetRequiredService<IPeerReplication>(), maxLagEntries, time),
            failureStatus: null,
            tags: ["crossstoresync", "peering"]));
    }
}
