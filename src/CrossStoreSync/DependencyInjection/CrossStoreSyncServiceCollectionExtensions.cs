using CrossStoreSync.Configuration;
using CrossStoreSync.Consistency;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Migration;
using CrossStoreSync.Retention;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CrossStoreSync in a service collection.</summary>
public static class CrossStoreSyncServiceCollectionExtensions
{
    /// <summary>
    /// Adds the sync engine (<see cref="ISyncManager"/>), its options (validated on start), telemetry, a hosted
    /// service that runs the dispatchers and one that runs log retention (<see cref="CrossStoreSyncOptions.Retention"/>;
    /// register <see cref="ILogRetentionHolder"/>s to hold truncation back). Safe to call more than once. Register a change log, a source of truth and
    /// replicas on the returned builder (for example <c>UseSqlite(...)</c>).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options; collections are declared here.</param>
    /// <returns>A builder for stores and the log.</returns>
    public static ICrossStoreSyncBuilder AddCrossStoreSync(this IServiceCollection services, Action<CrossStoreSyncOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<CrossStoreSyncOptions>().ValidateOnStart();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrossStoreSyncOptions>, CrossStoreSyncOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton<SyncMetrics>();
        services.TryAddSingleton(sp => new SyncEngine(
            () => CreateTopology(sp),
            sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<SyncMetrics>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetServices<TransformRegistration>()));
        services.TryAddSingleton<ISyncManager>(sp => sp.GetRequiredService<SyncEngine>());
        services.TryAddSingleton<IChangeFeedWriter>(sp => sp.GetRequiredService<SyncEngine>());
        services.TryAddSingleton<CrossStoreSync.Replication.IReplicationWriter>(sp => sp.GetRequiredService<SyncEngine>());
        services.TryAddSingleton<IConsistencyChecker>(sp => new ConsistencyChecker(
            sp.GetRequiredService<SyncEngine>(),
            sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<SyncMetrics>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        services.TryAddSingleton<IMigrationManager>(sp => new MigrationManager(
            sp.GetRequiredService<SyncEngine>(),
            sp.GetRequiredService<IConsistencyChecker>(),
            sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>(),
            sp.GetServices<TransformRegistration>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<SyncMetrics>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        services.TryAddSingleton(sp => new LogRetention(
            sp.GetRequiredService<SyncEngine>(),
            sp.GetServices<ILogRetentionHolder>(),
            sp,
            sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<SyncMetrics>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        services.TryAddSingleton<IChangeLogInspector>(sp => new ChangeLogInspector(
            sp.GetRequiredService<SyncEngine>(),
            sp.GetRequiredService<IOptions<CrossStoreSyncOptions>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, CrossStoreSyncHostedService>());

        // After the engine's hosted service: hosts start services in order and stop them in reverse.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, LogRetentionHostedService>());
        return new CrossStoreSyncBuilder(services);
    }

    private static StoreTopology CreateTopology(IServiceProvider sp)
    {
        var log = sp.GetService<ChangeLogRegistration>()?.Factory(sp)
            ?? throw new InvalidOperationException("No change log is registered. Call UseSqlite(...) or UseChangeLog(...) on the builder returned by AddCrossStoreSync.");
        var source = sp.GetService<SourceRegistration>()?.Factory(sp)
            ?? throw new InvalidOperationException("No source of truth is registered. Call UseSqlite(...) or UseSourceOfTruth(...) on the builder returned by AddCrossStoreSync.");
        var replicas = sp.GetServices<ReplicaRegistration>().Select(r => r.Factory(sp)).OfType<ISyncStore>().ToArray();
        return new StoreTopology(log, source, replicas);
    }
}

/// <summary>Registers stores and the change log on an <see cref="ICrossStoreSyncBuilder"/>.</summary>
public static class CrossStoreSyncBuilderExtensions
{
    /// <summary>Uses the given change log, replacing an earlier registration. The factory runs once, at start-up.</summary>
    public static ICrossStoreSyncBuilder UseChangeLog(this ICrossStoreSyncBuilder builder, Func<IServiceProvider, IChangeLog> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<ChangeLogRegistration>();
        builder.Services.AddSingleton(new ChangeLogRegistration(factory));
        return builder;
    }

    /// <summary>Uses the given document store as the source of truth, replacing an earlier registration.</summary>
    public static ICrossStoreSyncBuilder UseSourceOfTruth(this ICrossStoreSyncBuilder builder, Func<IServiceProvider, IDocumentStore> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<SourceRegistration>();
        builder.Services.AddSingleton(new SourceRegistration(factory));
        return builder;
    }

    /// <summary>
    /// Adds a replica fed by its own dispatcher. <paramref name="registrationId"/> identifies the registration, so adding
    /// the same id twice keeps one. The factory runs once at start-up and may return null to leave the replica out
    /// (for example when configuration disables it).
    /// </summary>
    public static ICrossStoreSyncBuilder AddReplica(this ICrossStoreSyncBuilder builder, string registrationId, Func<IServiceProvider, ISyncStore?> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(registrationId);
        ArgumentNullException.ThrowIfNull(factory);
        foreach (var descriptor in builder.Services)
        {
            if (descriptor.ServiceType == typeof(ReplicaRegistration) && descriptor.ImplementationInstance is ReplicaRegistration r && r.Id == registrationId)
            {
                return builder;
            }
        }

        builder.Services.AddSingleton(new ReplicaRegistration(registrationId, factory));
        return builder;
    }

    /// <summary>
    /// Registers a named entity transform (for example, a new embedding model) that migrations and re-embedded
    /// collection routes refer to by name. Register it on every start: a route installed by a re-embedding keeps
    /// transforming live changes after a restart, and the engine refuses to start when its transform is missing.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The transform's name: 1..64 characters.</param>
    /// <param name="transform">The transform.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty, too long, or already registered.</exception>
    public static ICrossStoreSyncBuilder AddTransform(this ICrossStoreSyncBuilder builder, string name, EntityTransform transform)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(transform);
        if (name.Length > 64)
        {
            throw new ArgumentException($"Transform name {SafeText.Quote(name, 24)} is {name.Length} characters long; at most 64 are allowed.", nameof(name));
        }

        foreach (var descriptor in builder.Services)
        {
            if (descriptor.ImplementationInstance is TransformRegistration r && r.Name == name)
            {
                throw new ArgumentException($"A transform named {SafeText.Quote(name)} is already registered.", nameof(name));
            }
        }

        builder.Services.AddSingleton(new TransformRegistration(name, transform));
        return builder;
    }
}
