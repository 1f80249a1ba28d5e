using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.SurrealDb;
using CrossStoreSync.SurrealDb.ChangeFeed;
using CrossStoreSync.SurrealDb.DependencyInjection;
using CrossStoreSync.SurrealDb.Stores;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers SurrealDB as the source of truth of CrossStoreSync.</summary>
public static class CrossStoreSyncSurrealDbBuilderExtensions
{
    /// <summary>The name of the <see cref="HttpClient"/> the store gets from <see cref="IHttpClientFactory"/>; configure it with <c>AddHttpClient(name)</c> (proxies, TLS, handlers).</summary>
    public const string HttpClientName = "CrossStoreSync.SurrealDb";

    /// <summary>
    /// Uses a SurrealDB database as the source-of-truth document store, replacing an earlier source registration
    /// (such as the SQLite one from <c>UseSqlite</c>, whose change log and replicas stay). Options are validated on
    /// start. Safe to call more than once.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddCrossStoreSync</c>.</param>
    /// <param name="configure">Sets the endpoint, namespace, database and credentials.</param>
    /// <returns>The builder.</returns>
    public static ICrossStoreSyncBuilder AddSurrealDbDocumentStore(this ICrossStoreSyncBuilder builder, Action<SurrealDbOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddOptions<SurrealDbOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SurrealDbOptions>, SurrealDbOptionsValidator>());

        // The store's requests are bounded by SurrealDbOptions.RequestTimeout through its own pipeline.
        services.AddHttpClient(HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new SurrealDbDocumentStore(
            sp.GetRequiredService<IOptions<SurrealDbOptions>>().Value,
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName),
            sp.GetService<ILogger<SurrealDbDocumentStore>>(),
            sp.GetRequiredService<TimeProvider>()));
        builder.UseSourceOfTruth(sp => sp.GetRequiredService<SurrealDbDocumentStore>());
        return builder;
    }

    /// <summary>
    /// Follows SurrealDB's change feed of the source tables (every configured collection unless
    /// <see cref="SurrealDbChangeFeedOptions.Collections"/> says otherwise) as a hosted service, so writes other
    /// programs make directly in SurrealDB reach the replicas. Needs <see cref="AddSurrealDbDocumentStore"/>. Safe to
    /// call more than once.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddCrossStoreSync</c>.</param>
    /// <param name="configure">Adjusts polling, batch size, retention and the followed tables.</param>
    /// <returns>The builder.</returns>
    public static ICrossStoreSyncBuilder AddSurrealDbChangeFeed(this ICrossStoreSyncBuilder builder, Action<SurrealDbChangeFeedOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<SurrealDbChangeFeedOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(SurrealDbChangeFeed)))
        {
            return builder;
        }

        services.AddSingleton(sp => new SurrealDbChangeFeed(
            sp.GetRequiredService<SurrealDbDocumentStore>(),
            sp.GetRequiredService<ISyncManager>(),
            [.. sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>().Value.Collections.Select(c => c.Name)],
            sp.GetRequiredService<IOptions<SurrealDbChangeFeedOptions>>().Value,
            sp.GetService<ILogger<SurrealDbChangeFeed>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<SurrealDbChangeFeed>());
        return builder;
    }
}
