using CrossStoreSync.Configuration.Binding;
using CrossStoreSync.DependencyInjection;
using Microsoft.Extensions.Configuration;

namespace CrossStoreSync.Configuration;

/// <summary>
/// One store's configuration section, handed to the store type's registration (see <see cref="StoreTypeRegistry.Add"/>):
/// what role it plays, its name, and helpers that bind and validate its keys so every problem is reported with the
/// key's full path and value. Problems are collected; the caller throws one
/// <see cref="CrossStoreSyncConfigurationException"/> listing all of them.
/// </summary>
public sealed class StoreConfiguration
{
    /// <summary>The key that chooses the store type. It is never bound onto options.</summary>
    public const string TypeKey = "Type";

    private readonly List<string> _errors;

    internal StoreConfiguration(ICrossStoreSyncBuilder builder, IConfigurationSection section, string type, StoreRoles role, string? replicaName, List<string> errors)
    {
        Builder = builder;
        Section = section;
        Type = type;
        Role = role;
        ReplicaName = replicaName;
        _errors = errors;
    }

    /// <summary>The builder to register the store on.</summary>
    public ICrossStoreSyncBuilder Builder { get; }

    /// <summary>The store's section, for example <c>CrossStoreSync:Replicas:vectors</c>.</summary>
    public IConfigurationSection Section { get; }

    /// <summary>The section's full path.</summary>
    public string Path => Section.Path;

    /// <summary>The type named by the section.</summary>
    public string Type { get; }

    /// <summary>
    /// What to register: <see cref="StoreRoles.Replica"/>, <see cref="StoreRoles.ChangeLog"/> alone (a <c>Log</c>
    /// section), <see cref="StoreRoles.Source"/> alone (a source whose log is configured separately), or
    /// <see cref="StoreRoles.Source"/> | <see cref="StoreRoles.ChangeLog"/> (a source that keeps its own log).
    /// </summary>
    public StoreRoles Role { get; }

    /// <summary>The replica's name (its key under <c>Replicas</c>); null for the log and the source.</summary>
    public string? ReplicaName { get; }

    /// <summary>True when a problem was reported for any section so far.</summary>
    public bool HasErrors => _errors.Count > 0;

    /// <summary>
    /// Binds every key of the section except <see cref="TypeKey"/> onto <paramref name="options"/>: keys are the
    /// option's property names (case-insensitive). Unknown keys and values of the wrong shape are reported.
    /// </summary>
    /// <param name="options">The options object, holding its defaults.</param>
    /// <param name="excludedProperties">Properties that configuration must not set here (for example a replica's name, which is its key); reported as unknown.</param>
    public void Bind(object options, params string[] excludedProperties)
    {
        ArgumentNullException.ThrowIfNull(options);
        SectionBinder.Bind(Section, options, [TypeKey], excludedProperties, _errors);
    }

    /// <summary>
    /// Returns a delegate that binds this section onto an options object the same way <see cref="Bind"/> does, for the
    /// package's <c>Add...(configure)</c> registration (which then validates the options again at start-up). Problems
    /// are reported by <see cref="Bind"/>, not by the delegate.
    /// </summary>
    /// <typeparam name="TOptions">The options type.</typeparam>
    /// <param name="excludedProperties">As for <see cref="Bind"/>.</param>
    /// <returns>The delegate.</returns>
    public Action<TOptions> CreateBinder<TOptions>(params string[] excludedProperties)
        where TOptions : class
    {
        var section = Section;
        return options => SectionBinder.Bind(section, options, [TypeKey], excludedProperties, []);
    }

    /// <summary>
    /// Runs the options' own validation (the same the code path runs at start-up) and reports an
    /// <see cref="ArgumentException"/> it throws under the section's path: a message that starts with
    /// <c>{options type name}.{property}</c> is rewritten to start with the configuration key instead.
    /// </summary>
    /// <param name="validate">Throws <see cref="ArgumentException"/> for a bad value.</param>
    /// <param name="optionsTypeName">The options class name the messages start with, for example <c>QdrantVectorStoreOptions</c>.</param>
    public void Validate(Action validate, string optionsTypeName)
    {
        ArgumentNullException.ThrowIfNull(validate);
        try
        {
            validate();
        }
        catch (ArgumentException ex)
        {
            _errors.Add(ConfigurationMessages.UnderPath(ConfigurationMessages.WithoutParameter(ex), optionsTypeName, Path));
        }
    }

    /// <summary>Reports a problem with a key of this section.</summary>
    /// <param name="key">The key, relative to the section (for example <c>Address</c>), or null for the section itself.</param>
    /// <param name="message">What is wrong and what would be right.</param>
    public void AddError(string? key, string message)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(message);
        _errors.Add(key is null ? $"{Path}: {message}" : $"{Path}:{key} {message}");
    }
}
