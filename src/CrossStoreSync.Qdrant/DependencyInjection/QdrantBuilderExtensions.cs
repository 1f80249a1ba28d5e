using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Errors;
using CrossStoreSync.Qdrant;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Qdrant.Client;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a Qdrant vector store as a replica.</summary>
public static class CrossStoreSyncQdrantBuilderExtensions
{
    /// <summary>
    /// Adds a <see cref="QdrantVectorStore"/> named <paramref name="name"/> as a replica, with a Qdrant client of its
    /// own built from the options (<see cref="QdrantVectorStoreOptions.Address"/>, gRPC port 6334;
    /// <see cref="QdrantVectorStoreOptions.ApiKey"/>; <see cref="QdrantVectorStoreOptions.CertificateThumbprint"/> for a
    /// self-signed TLS certificate), disposed with the container. The options are validated at start-up; the store is a
    /// keyed singleton under <paramref name="name"/>. Calling it again with the same name adds nothing new but the extra
    /// configuration.
    /// </summary>
    /// <param name="builder">The builder from <c>AddCrossStoreSync</c>.</param>
    /// <param name="configure">Sets the options; <see cref="QdrantVectorStoreOptions.Address"/> is required.</param>
    /// <param name="name">The store's name (<see cref="QdrantVectorStoreOptions.StoreName"/>). <value>Default <c>qdrant</c>.</value></param>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="configure"/> is null.</exception>
    public static ICrossStoreSyncBuilder AddQdrantVectorStore(this ICrossStoreSyncBuilder builder, Action<QdrantVectorStoreOptions> configure, string name = "qdrant")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        AddOptions(builder.Services, name, configure, clientGiven: false);
        builder.Services.TryAddKeyedSingleton(name, (sp, _) => new QdrantVectorStore(
            sp.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        builder.AddReplica("qdrant:" + name, sp => sp.GetRequiredKeyedService<QdrantVectorStore>(name));
        return builder;
    }

    /// <summary>
    /// Adds a <see cref="QdrantVectorStore"/> named <paramref name="name"/> as a replica over a <see cref="QdrantClient"/>
    /// the application already has, for example <c>sp =&gt; sp.GetRequiredService&lt;QdrantClient&gt;()</c>; the client's
    /// address, credentials and TLS settings apply, and the store never disposes it. It must be the concrete client:
    /// <see cref="IQdrantClient"/> has no upsert with an update filter, which the version guard needs. The options
    /// (without connection settings) are validated at start-up.
    /// </summary>
    /// <param name="builder">The builder from <c>AddCrossStoreSync</c>.</param>
    /// <param name="client">Returns the client; called once, when the store is first resolved.</param>
    /// <param name="configure">Sets the other options, or null for the defaults. <see cref="QdrantVectorStoreOptions.Address"/>, <see cref="QdrantVectorStoreOptions.ApiKey"/> and <see cref="QdrantVectorStoreOptions.CertificateThumbprint"/> must stay null.</param>
    /// <param name="name">The store's name. <value>Default <c>qdrant</c>.</value></param>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="client"/> is null.</exception>
    public static ICrossStoreSyncBuilder AddQdrantVectorStore(this ICrossStoreSyncBuilder builder, Func<IServiceProvider, QdrantClient> client, Action<QdrantVectorStoreOptions>? configure = null, string name = "qdrant")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        AddOptions(builder.Services, name, configure ?? (static _ => { }), clientGiven: true);
        builder.Services.TryAddKeyedSingleton(name, (sp, _) => new QdrantVectorStore(
            client(sp) ?? throw new InvalidOperationException($"The QdrantClient factory of Qdrant store {SafeText.Quote(name)} returned null."),
            sp.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        builder.AddReplica("qdrant:" + name, sp => sp.GetRequiredKeyedService<QdrantVectorStore>(name));
        return builder;
    }

    private static void AddOptions(IServiceCollection services, string name, Action<QdrantVectorStoreOptions> configure, bool clientGiven)
    {
        services.AddOptions<QdrantVectorStoreOptions>(name)
            .Configure(o => o.StoreName = name)
            .Configure(configure)
            .ValidateOnStart();
        if (!services.Any(d => d.ImplementationInstance is QdrantOptionsValidator v && v.Name == name))
        {
            services.AddSingleton<IValidateOptions<QdrantVectorStoreOptions>>(new QdrantOptionsValidator(name, clientGiven));
        }
    }
}

/// <summary>Validates the named options of one store at start-up, reporting the bad value.</summary>
internal sealed class QdrantOptionsValidator(string name, bool clientGiven) : IValidateOptions<QdrantVectorStoreOptions>
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
            options.Validate(clientGiven);
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }

        return options.StoreName == Name
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"QdrantVectorStoreOptions.StoreName is {SafeText.Quote(options.StoreName)} but the store was registered as {SafeText.Quote(Name)}; they must match.");
    }
}
