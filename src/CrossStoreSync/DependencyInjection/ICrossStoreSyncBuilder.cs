namespace CrossStoreSync.DependencyInjection;

/// <summary>Returned by <c>AddCrossStoreSync</c>; stores and the change log are registered on it.</summary>
public interface ICrossStoreSyncBuilder
{
    /// <summary>The service collection.</summary>
    Microsoft.Extensions.DependencyInjection.IServiceCollection Services { get; }
}

internal sealed class CrossStoreSyncBuilder(Microsoft.Extensions.DependencyInjection.IServiceCollection services) : ICrossStoreSyncBuilder
{
    public Microsoft.Extensions.DependencyInjection.IServiceCollection Services { get; } = services;
}

/// <summary>One replica registration; <see cref="Id"/> makes repeated registrations of the same replica harmless.</summary>
internal sealed record ReplicaRegistration(string Id, Func<IServiceProvider, Stores.ISyncStore?> Factory);

/// <summary>The source-of-truth registration.</summary>
internal sealed record SourceRegistration(Func<IServiceProvider, Stores.IDocumentStore> Factory);

/// <summary>The change-log registration.</summary>
internal sealed record ChangeLogRegistration(Func<IServiceProvider, Log.IChangeLog> Factory);
