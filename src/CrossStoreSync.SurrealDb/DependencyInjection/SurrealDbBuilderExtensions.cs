using CrossStoreSync.DependencyInjection;
using CrossStoreSync.SurrealDb;
using CrossStoreSync.SurrealDb.DependencyInjection;
using CrossStoreSync.SurrealDb.Stores;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
}
