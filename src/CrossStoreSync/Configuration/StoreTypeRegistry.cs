namespace CrossStoreSync.Configuration;

/// <summary>The parts of a deployment a configured store can play.</summary>
[Flags]
public enum StoreRoles
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>The change log (section <c>Log</c>, or the source's own log when its type keeps one).</summary>
    ChangeLog = 1,

    /// <summary>The source of truth (section <c>Source</c>).</summary>
    Source = 2,

    /// <summary>A replica (one entry of section <c>Replicas</c>).</summary>
    Replica = 4,
}

/// <summary>
/// The store types that <c>AddCrossStoreSync(configuration, types =&gt; ...)</c> can choose from by each section's
/// <c>Type</c> key. Each store package adds its own (<c>types.AddSqlite()</c>, <c>types.AddPostgreSql()</c>,
/// <c>types.AddSurrealDb()</c>, <c>types.AddQdrant()</c>, <c>types.AddNeo4j()</c>), so the core package depends on none of
/// them. Not thread-safe; filled once while services are registered.
/// </summary>
public sealed class StoreTypeRegistry
{
    private readonly Dictionary<string, StoreTypeRegistration> _types = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Adds (or replaces) a store type.</summary>
    /// <param name="type">The value of the <c>Type</c> key that selects it (case-insensitive), for example <c>Qdrant</c>.</param>
    /// <param name="roles">
    /// What it can be. A type that is a <see cref="StoreRoles.Source"/> and a <see cref="StoreRoles.ChangeLog"/> keeps the
    /// log beside the source (one transaction for both): as the source it registers both, and no <c>Log</c> section is
    /// allowed with it.
    /// </param>
    /// <param name="register">Reads the section (see <see cref="StoreConfiguration"/>) and registers the store on the builder.</param>
    /// <returns>This registry, for chaining.</returns>
    /// <exception cref="ArgumentException"><paramref name="type"/> is blank or <paramref name="roles"/> is <see cref="StoreRoles.None"/>.</exception>
    public StoreTypeRegistry Add(string type, StoreRoles roles, Action<StoreConfiguration> register)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(type);
        ArgumentNullException.ThrowIfNull(register);
        if (roles == StoreRoles.None)
        {
            throw new ArgumentException($"Store type '{type}' must have at least one role.", nameof(roles));
        }

        _types[type] = new StoreTypeRegistration(type, roles, register);
        return this;
    }

    /// <summary>The names of the registered types.</summary>
    public IReadOnlyCollection<string> Types => _types.Keys;

    internal bool TryGet(string type, out StoreTypeRegistration registration) => _types.TryGetValue(type, out registration!);
}

/// <summary>One store type.</summary>
internal sealed record StoreTypeRegistration(string Type, StoreRoles Roles, Action<StoreConfiguration> Register);
