using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Sqlite;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the embedded SQLite change log and stores.</summary>
public static class CrossStoreSyncSqliteBuilderExtensions
{
    /// <summary>
    /// Uses SQLite for everything: a durable change log and the source-of-truth document store in one file (so a
    /// write and its log entry commit together), plus a vector store and a graph store in their own files.
    /// Safe to call more than once.
    /// </summary>
    public static ICrossStoreSyncBuilder UseSqlite(this ICrossStoreSyncBuilder builder, Action<SqliteSyncOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<SqliteSyncOptions>().Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SqliteSyncOptions>>().Value;
            o.Validate();
            return new SqliteChangeLog(Path.Combine(o.DirectoryPath, "source.db"), o.DocumentStoreName, o.Durable);
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SqliteSyncOptions>>().Value;
            return new SqliteVectorStore(Path.Combine(o.DirectoryPath, "vectors.db"), o.VectorStoreName ?? "vectors", o.Durable);
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SqliteSyncOptions>>().Value;
            return new SqliteGraphStore(Path.Combine(o.DirectoryPath, "graph.db"), o.GraphStoreName ?? "graph", o.Durable);
        });

        builder.UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>());
        builder.UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents);
        builder.AddReplica("sqlite-vectors", sp => sp.GetRequiredService<IOptions<SqliteSyncOptions>>().Value.VectorStoreName is null ? null : sp.GetRequiredService<SqliteVectorStore>());
        builder.AddReplica("sqlite-graph", sp => sp.GetRequiredService<IOptions<SqliteSyncOptions>>().Value.GraphStoreName is null ? null : sp.GetRequiredService<SqliteGraphStore>());
        return builder;
    }
}
