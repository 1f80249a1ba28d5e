using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Qdrant;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a Qdrant vector store as a replica.</summary>
public static class CrossStoreSyncQdrantBuilderExtensions
{
    /// <summary>
    /// Adds a <see cref="QdrantVectorStore"/> named <paramref name="name"/> as a replica, with a named
    /// <see cref="HttpClient"/> (<see cref="QdrantVectorStore.HttpClientName"/>) that callers may configure further.
    /// The options are validated at start-up; the store is a keyed singleton under <paramref name="name"/>.
    /// Calling it again with the same name adds nothing new but the extra configuration.
    /// </summary>
    /// <param name="builder">The builder from <c>AddCrossStoreSync</c>.</param>
    /// <param name="name">The store's name (<see cref="QdrantVectorStoreOptions.StoreName"/>). <value>Default <c>qdrant</c>.</value></param>
    /// <param name="configure">Sets the options; <see cref="QdrantVectorStoreOptions.BaseAddress"/> is required.</param>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="configure"/> is null.</exception>
    public static ICrossStoreSyncBuilder AddQdrantVectorStore(this ICrossStoreSyncBuilder builder, Action<QdrantVectorStoreOptions> configure, string name = "qdrant")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var services = builder.Services;
        services.AddOptions<QdrantVectorStoreOptions>(name)
            .Configure(o => o.StoreName = name)
            .Configure(configure)
            .ValidateOnStart();
        if (!services.Any(d => d.ImplementationInstance is QdrantOptionsValidator v && v.Name == name))
        {
            services.AddSingleton<IValidateOptions<QdrantVectorStoreOptions>>(new QdrantOptionsValidator(name));
        }
        services.AddHttpClient(QdrantVectorStore.HttpClientName(name));
        services.TryAddKeyedSingleton(name, (sp, _) => new QdrantVectorStore(
            sp.GetRequiredService<IHttpClientFactory>(),
            sp.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        builder.AddReplica("qdrant:" + name, sp => sp.GetRequiredKeyedService<QdrantVectorStore>(name));
        return builder;
    }
}

/// <summary>Validates the named options of one store at start-up, reporting the bad value.</summary>
internal sealed class QdrantOptionsValidator(string name) : IValidateOptions<QdrantVectorStoreOptions>
{
    public string Name { get; } = name;

    public ValidateOptionsResult Validate(string? optionsName, QdrantVectorStoreOptions options)
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
            : ValidateOptionsResult.Fail($"QdrantVectorStoreOptions.StoreName is '{options.StoreName}' but the store was registered as '{Name}'; they must match.");
    }
}
