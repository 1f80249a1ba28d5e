using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Sqlite;
using CrossStoreSync.Sqlite.Stores;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The SQLite store types for <c>AddCrossStoreSync(configuration, types =&gt; types.AddSqlite())</c>.</summary>
public static class CrossStoreSyncSqliteStoreTypes
{
    /// <summary>
    /// Adds <c>Sqlite</c> (source of truth with its change log in <c>{DirectoryPath}/source.db</c>, or the change log
    /// alone for a source elsewhere; keys of <see cref="SqliteSyncOptions"/>: <c>DirectoryPath</c>, <c>Durable</c>,
    /// <c>DocumentStoreName</c>, and <c>VectorStoreName</c> / <c>GraphStoreName</c> to add the vector and graph replicas
    /// <c>UseSqlite</c> keeps in the same folder — unlike <c>UseSqlite</c>, none unless named), <c>SqliteVectors</c> and
    /// <c>SqliteGraph</c> (replicas in a file of their own; keys <c>Path</c> and <c>Durable</c>).
    /// </summary>
    /// <param name="types">The registry.</param>
    /// <returns>The registry.</returns>
    public static StoreTypeRegistry AddSqlite(this StoreTypeRegistry types)
    {
        ArgumentNullException.ThrowIfNull(types);
        return types
            .Add("Sqlite", StoreRoles.Source | StoreRoles.ChangeLog, RegisterSource)
            .Add("SqliteVectors", StoreRoles.Replica, store => RegisterReplica(store, (path, name, durable) => new SqliteVectorStore(path, name, durable)))
            .Add("SqliteGraph", StoreRoles.Replica, store => RegisterReplica(store, (path, name, durable) => new SqliteGraphStore(path, name, durable)));
    }

    private static void RegisterSource(StoreConfiguration store)
    {
        var check = NoReplicas(new SqliteSyncOptions());
        store.Bind(check);
        store.Validate(check.Validate, nameof(SqliteSyncOptions));
        var bind = store.CreateBinder<SqliteSyncOptions>();

        // As the log of another source, its documents are registered as the source too; the source registered next replaces them.
        store.Builder.UseSqlite(o => bind(NoReplicas(o)));
    }

    private static SqliteSyncOptions NoReplicas(SqliteSyncOptions options)
    {
        options.VectorStoreName = null;
        options.GraphStoreName = null;
        return options;
    }

    private static void RegisterReplica<TStore>(StoreConfiguration store, Func<string, string, bool, TStore> create)
        where TStore : class, CrossStoreSync.Stores.ISyncStore
    {
        var settings = new SqliteReplicaOptions();
        store.Bind(settings);
        if (string.IsNullOrWhiteSpace(settings.Path))
        {
            store.AddError(nameof(SqliteReplicaOptions.Path), $"is {SafeText.Quote(settings.Path)}; set the replica's database file, for example \"data/{store.ReplicaName}.db\".");
            return;
        }

        var name = store.ReplicaName!;
        store.Builder.Services.TryAddKeyedSingleton(name, (_, _) => create(settings.Path, name, settings.Durable));
        store.Builder.AddReplica($"sqlite:{name}", sp => sp.GetRequiredKeyedService<TStore>(name));
    }
}

/// <summary>Settings of a <c>SqliteVectors</c> or <c>SqliteGraph</c> replica read from configuration.</summary>
public sealed class SqliteReplicaOptions
{
    /// <summary>The replica's database file (created if missing). <value>Required.</value></summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Whether every commit is fsync'd before it is acknowledged. <value>Default true.</value></summary>
    public bool Durable { get; set; } = true;
}
