using CrossStoreSync.Configuration;
using CrossStoreSync.Configuration.Binding;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Errors;
using CrossStoreSync.Stores;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CrossStoreSync from a configuration section (appsettings.json, environment variables, ...).</summary>
public static class CrossStoreSyncConfigurationExtensions
{
    private const string CollectionsKey = "Collections";
    private const string SourceKey = "Source";
    private const string LogKey = "Log";
    private const string ReplicasKey = "Replicas";

    /// <summary>
    /// Adds CrossStoreSync as <see cref="CrossStoreSyncServiceCollectionExtensions.AddCrossStoreSync(IServiceCollection, Action{CrossStoreSyncOptions}?)"/>
    /// does, with the options and, when <paramref name="storeTypes"/> is given, the stores read from
    /// <paramref name="configuration"/> (typically <c>builder.Configuration.GetSection("CrossStoreSync")</c>):
    /// <code>
    /// "CrossStoreSync": {
    ///   "DispatchBatchSize": 512, "RetryMaxDelay": "00:00:30",               // any CrossStoreSyncOptions property
    ///   "Collections": { "notes": { "VectorDimension": 384, "Distance": "Cosine" }, "topics": {} },
    ///   "ReplicasAwaitingBackfill": [ "vectors" ],
    ///   "Source": { "Type": "Sqlite", "DirectoryPath": "data" },              // the source of truth (and its log)
    ///   "Log": { "Type": "PostgreSql", "ConnectionString": "..." },          // only for a source without a log of its own
    ///   "Replicas": {                                                        // key = the replica's name
    ///     "vectors": { "Type": "Qdrant", "Address": "http://qdrant:6334" },
    ///     "graph": { "Type": "Neo4j", "BaseAddress": "http://neo4j:7474", "User": "neo4j", "Password": "..." }
    ///   }
    /// }
    /// </code>
    /// Each store section's keys are the properties of its package's options class. The section is read and checked
    /// now, with the same validation the code path runs at start-up: every problem (an unknown key, a value of the wrong
    /// shape or out of range, a missing or unknown <c>Type</c>, a store in a role its type cannot play) is reported at
    /// once, naming the key and quoting the value. Changes to the configuration later need a restart. Code
    /// registrations may still be chained on the returned builder (transforms, change feeds, more replicas).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The CrossStoreSync section.</param>
    /// <param name="storeTypes">
    /// Adds the store types the section may choose from, one call per store package referenced:
    /// <c>types =&gt; types.AddSqlite().AddPostgreSql().AddSurrealDb().AddQdrant().AddNeo4j()</c>. When null, stores are
    /// registered in code and the section must not contain <c>Source</c>, <c>Log</c> or <c>Replicas</c>.
    /// </param>
    /// <returns>The builder.</returns>
    /// <exception cref="CrossStoreSyncConfigurationException">The section is invalid; the message lists every problem.</exception>
    public static ICrossStoreSyncBuilder AddCrossStoreSync(this IServiceCollection services, IConfiguration configuration, Action<StoreTypeRegistry>? storeTypes = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var path = (configuration as IConfigurationSection)?.Path ?? string.Empty;
        var errors = new List<string>();

        // Bound once now to report every problem at registration, and again when the options are built (same values).
        var snapshot = new CrossStoreSyncOptions();
        BindOptions(configuration, snapshot, errors);
        if (errors.Count == 0)
        {
            var validation = new CrossStoreSyncOptionsValidator().Validate(null, snapshot);
            if (validation.Failed)
            {
                foreach (var failure in validation.Failures)
                {
                    errors.Add(snapshot.Collections.Count == 0 && failure.Contains(".Collections ", StringComparison.Ordinal)
                        ? $"{Key(path, CollectionsKey)} is empty: declare at least one collection, for example \"Collections\": {{ \"notes\": {{ \"VectorDimension\": 384 }} }}."
                        : ConfigurationMessages.UnderPath(failure, nameof(CrossStoreSyncOptions), path.Length == 0 ? nameof(CrossStoreSyncOptions) : path));
                }
            }
        }

        var builder = services.AddCrossStoreSync(o => BindOptions(configuration, o, []));
        RegisterStores(builder, configuration, path, storeTypes, errors);
        if (errors.Count > 0)
        {
            throw new CrossStoreSyncConfigurationException(errors);
        }

        return builder;
    }

    private static void BindOptions(IConfiguration configuration, CrossStoreSyncOptions options, List<string> errors)
    {
        SectionBinder.Bind(configuration, options, [CollectionsKey, SourceKey, LogKey, ReplicasKey], [], errors);
        foreach (var collection in configuration.GetSection(CollectionsKey).GetChildren())
        {
            var settings = new CollectionSettings();
            SectionBinder.Bind(collection, settings, [], [], errors);
            try
            {
                options.AddCollection(collection.Key, settings.VectorDimension, settings.Distance);
            }
            catch (ArgumentException ex)
            {
                errors.Add($"{collection.Path}: {ConfigurationMessages.WithoutParameter(ex)}");
            }
        }
    }

    private static void RegisterStores(ICrossStoreSyncBuilder builder, IConfiguration configuration, string path, Action<StoreTypeRegistry>? storeTypes, List<string> errors)
    {
        var source = configuration.GetSection(SourceKey);
        var log = configuration.GetSection(LogKey);
        var replicas = configuration.GetSection(ReplicasKey);
        if (storeTypes is null)
        {
            foreach (var present in new[] { source, log, replicas }.Where(s => s.Exists()))
            {
                errors.Add($"{present.Path} is set, but no store types were given: call AddCrossStoreSync(configuration, types => types.AddSqlite() ...) with the store packages the section chooses from, or register the stores in code and remove the section.");
            }

            return;
        }

        var registry = new StoreTypeRegistry();
        storeTypes(registry);
        if (!source.Exists())
        {
            errors.Add($"{Key(path, SourceKey)} is missing: configure the source of truth, for example \"Source\": {{ \"Type\": \"Sqlite\", \"DirectoryPath\": \"data\" }}. Types: {string.Join(", ", Known(registry, StoreRoles.Source))}.");
            return;
        }

        var sourceType = Resolve(registry, source, StoreRoles.Source, errors);
        if (sourceType is null)
        {
            return;
        }

        var keepsLog = sourceType.Roles.HasFlag(StoreRoles.ChangeLog);
        if (keepsLog && log.Exists())
        {
            errors.Add($"{log.Path} is set, but a {sourceType.Type} source keeps its change log beside its documents (one transaction for both); remove the {LogKey} section.");
        }
        else if (!keepsLog && !log.Exists())
        {
            errors.Add($"{Key(path, LogKey)} is missing: a {sourceType.Type} source keeps no change log; add a {LogKey} section with a Type of {string.Join(", ", Known(registry, StoreRoles.ChangeLog))}.");
        }

        // The log first: a log type may also register its own documents as the source, which the source then replaces.
        if (!keepsLog && log.Exists() && Resolve(registry, log, StoreRoles.ChangeLog, errors) is { } logType)
        {
            Register(logType, new StoreConfiguration(builder, log, logType.Type, StoreRoles.ChangeLog, null, errors), errors);
        }

        Register(sourceType, new StoreConfiguration(builder, source, sourceType.Type, keepsLog ? StoreRoles.Source | StoreRoles.ChangeLog : StoreRoles.Source, null, errors), errors);
        foreach (var replica in replicas.GetChildren())
        {
            if (Resolve(registry, replica, StoreRoles.Replica, errors) is { } replicaType)
            {
                Register(replicaType, new StoreConfiguration(builder, replica, replicaType.Type, StoreRoles.Replica, replica.Key, errors), errors);
            }
        }
    }

    private static StoreTypeRegistration? Resolve(StoreTypeRegistry registry, IConfigurationSection section, StoreRoles role, List<string> errors)
    {
        var type = section[StoreConfiguration.TypeKey];
        var typeKey = section.Path + ":" + StoreConfiguration.TypeKey;
        if (string.IsNullOrWhiteSpace(type))
        {
            errors.Add($"{typeKey} is missing; set it to one of: {string.Join(", ", Known(registry, role))}.");
            return null;
        }

        if (!registry.TryGet(type, out var registration))
        {
            errors.Add($"{typeKey} is {SafeText.Quote(type)}, which is not a known store type; known: {string.Join(", ", Known(registry, role))} (a store package's types are added with types.AddSqlite(), types.AddQdrant(), ...).");
            return null;
        }

        if (!registration.Roles.HasFlag(role))
        {
            errors.Add($"{typeKey} is {SafeText.Quote(type)}, which cannot be {Describe(role)}; it can be {Describe(registration.Roles)}. Types that can: {string.Join(", ", Known(registry, role))}.");
            return null;
        }

        return registration;
    }

    private static void Register(StoreTypeRegistration type, StoreConfiguration store, List<string> errors)
    {
        try
        {
            type.Register(store);
        }
        catch (ArgumentException ex)
        {
            errors.Add($"{store.Path}: {ConfigurationMessages.WithoutParameter(ex)}");
        }
    }

    private static IEnumerable<string> Known(StoreTypeRegistry registry, StoreRoles role) =>
        registry.Types.Where(t => registry.TryGet(t, out var r) && r.Roles.HasFlag(role)).Order(StringComparer.Ordinal);

    private static string Describe(StoreRoles roles) => string.Join(" or ", new[]
    {
        roles.HasFlag(StoreRoles.Source) ? "the source of truth" : null,
        roles.HasFlag(StoreRoles.ChangeLog) ? "the change log" : null,
        roles.HasFlag(StoreRoles.Replica) ? "a replica" : null,
    }.OfType<string>());

    private static string Key(string path, string key) => path.Length == 0 ? key : path + ":" + key;

    /// <summary>One entry of <c>Collections</c>.</summary>
    private sealed class CollectionSettings
    {
        public int? VectorDimension { get; set; }

        public VectorDistance Distance { get; set; } = VectorDistance.Cosine;
    }
}
