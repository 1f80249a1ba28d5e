using CrossStoreSync.DependencyInjection;
using CrossStoreSync.PostgreSql;
using CrossStoreSync.PostgreSql.Log;
using CrossStoreSync.PostgreSql.Stores;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the PostgreSQL change log (and document store).</summary>
public static class CrossStoreSyncPostgreSqlBuilderExtensions
{
    /// <summary>
    /// Uses PostgreSQL as the source of truth and the change log: a <see cref="PostgresDocumentStore"/> and a
    /// <see cref="PostgresChangeLog"/> in one database, so a write and its log entry commit in one transaction
    /// (a transactional outbox). Every process pointed at the same database shares the log; each dispatches the key
    /// partitions it holds a lease on, and takes over those of a process that dies. Replicas are added as usual.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Sets the connection string and options; validated at start-up.</param>
    public static ICrossStoreSyncBuilder UsePostgreSql(this ICrossStoreSyncBuilder builder, Action<PostgreSqlSyncOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        AddCore(builder.Services, configure);
        builder.Services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PostgreSqlSyncOptions>>().Value;
            return new PostgresDocumentStore(sp.GetRequiredService<PostgresSyncDataSource>().DataSource, o.DocumentStoreName, o.Schema);
        });
        builder.UseChangeLog(sp => sp.GetRequiredService<PostgresOutbox>().Log);
        builder.UseSourceOfTruth(sp => sp.GetRequiredService<PostgresDocumentStore>());
        builder.Services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PostgreSqlSyncOptions>>().Value;
            return new PostgresOutbox(new PostgresChangeLog(
                sp.GetRequiredService<PostgresSyncDataSource>().DataSource,
                sp.GetRequiredService<PostgresDocumentStore>(),
                new PostgresChangeLogOptions { Schema = o.Schema, Partitions = o.Partitions }));
        });
        return builder;
    }

    /// <summary>
    /// Uses a PostgreSQL change log shared by every process that points at the same database: each process dispatches
    /// the key partitions it holds a lease on (see <see cref="PostgresChangeLog"/>). The source of truth stays whatever
    /// <c>UseSourceOfTruth</c> registers; its writes are logged as pending until it confirms them.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Sets the connection string and options; validated at start-up.</param>
    public static ICrossStoreSyncBuilder UsePostgreSqlChangeLog(this ICrossStoreSyncBuilder builder, Action<PostgreSqlSyncOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        AddCore(builder.Services, configure);
        builder.UseChangeLog(sp => sp.GetRequiredService<PostgresChangeLog>());
        return builder;
    }

    private static void AddCore(IServiceCollection services, Action<PostgreSqlSyncOptions> configure)
    {
        services.AddOptions<PostgreSqlSyncOptions>().Configure(configure).Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PostgreSqlSyncOptions>>().Value;
            o.Validate();
            return new PostgresSyncDataSource(NpgsqlDataSource.Create(o.ConnectionString));
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PostgreSqlSyncOptions>>().Value;
            return new PostgresChangeLog(sp.GetRequiredService<PostgresSyncDataSource>().DataSource, new PostgresChangeLogOptions { Schema = o.Schema, Partitions = o.Partitions });
        });
    }
}

/// <summary>The change log committed together with the PostgreSQL document store.</summary>
internal sealed record PostgresOutbox(PostgresChangeLog Log);

/// <summary>The library's own connection pool, kept apart from any <see cref="NpgsqlDataSource"/> the application registers.</summary>
internal sealed class PostgresSyncDataSource(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    public NpgsqlDataSource DataSource { get; } = dataSource;

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();
}
