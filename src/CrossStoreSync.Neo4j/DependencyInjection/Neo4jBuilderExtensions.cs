using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Errors;
using CrossStoreSync.Neo4j;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a Neo4j graph store as a replica.</summary>
public static class CrossStoreSyncNeo4jBuilderExtensions
{
    /// <summary>
    /// Adds a <see cref="Neo4jGraphStore"/> named <paramref name="name"/> as a replica, with a named
    /// <see cref="HttpClient"/> (<see cref="Neo4jGraphStore.HttpClientName"/>) that callers may configure further.
    /// The options are validated at start-up; the store is a keyed singleton under <paramref name="name"/>.
    /// Calling it again with the same name adds nothing new but the extra configuration.
    /// </summary>
    /// <param name="builder">The builder from <c>AddCrossStoreSync</c>.</param>
    /// <param name="name">The store's name (<see cref="Neo4jGraphStoreOptions.StoreName"/>). <value>Default <c>neo4j</c>.</value></param>
    /// <param name="configure">Sets the options; <see cref="Neo4jGraphStoreOptions.BaseAddress"/> is required.</param>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="configure"/> is null.</exception>
    public static ICrossStoreSyncBuilder AddNeo4jGraphStore(this ICrossStoreSyncBuilder builder, Action<Neo4jGraphStoreOptions> configure, string name = "neo4j")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var services = builder.Services;
        services.AddOptions<Neo4jGraphStoreOptions>(name)
            .Configure(o => o.StoreName = name)
            .Configure(configure)
            .ValidateOnStart();
        if (!services.Any(d => d.ImplementationInstance is Neo4jOptionsValidator v && v.Name == name))
        {
            services.AddSingleton<IValidateOptions<Neo4jGraphStoreOptions>>(new Neo4jOptionsValidator(name));
        }
        services.AddHttpClient(Neo4jGraphStore.HttpClientName(name));
        services.TryAddKeyedSingleton(name, (sp, _) => new Neo4jGraphStore(
            sp.GetRequiredService<IHttpClientFactory>(),
            sp.GetRequiredService<IOptionsMonitor<Neo4jGraphStoreOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        builder.AddReplica("neo4j:" + name, sp => sp.GetRequiredKeyedService<Neo4jGraphStore>(name));
        return builder;
    }
}

/// <summary>Validates the named options of one store at start-up, reporting the bad value.</summary>
internal sealed class Neo4jOptionsValidator(string name) : IValidateOptions<Neo4jGraphStoreOptions>
{
    public string Name { get; } = name;

    public ValidateOptionsResult Validate(string? optionsName, Neo4jGraphStoreOptions options)
    {
        if (optionsName != Name)
        {
            return ValidateOptionsResult.Skip;
        }

        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }

        return options.StoreName == Name
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Neo4jGraphStoreOptions.StoreName is {SafeText.Quote(options.StoreName)} but the store was registered as {SafeText.Quote(Name)}; they must match.");
    }
}
