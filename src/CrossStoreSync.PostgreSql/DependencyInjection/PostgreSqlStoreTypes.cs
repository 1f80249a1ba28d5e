using CrossStoreSync.Configuration;
using CrossStoreSync.PostgreSql;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The PostgreSQL store type for <c>AddCrossStoreSync(configuration, types =&gt; types.AddPostgreSql())</c>.</summary>
public static class CrossStoreSyncPostgreSqlStoreTypes
{
    /// <summary>
    /// Adds <c>PostgreSql</c>: as the source, the document store with its transactional-outbox change log
    /// (<c>UsePostgreSql</c>); as the <c>Log</c> of a source elsewhere, the shared change log alone
    /// (<c>UsePostgreSqlChangeLog</c>). Keys of <see cref="PostgreSqlSyncOptions"/>: <c>ConnectionString</c>,
    /// <c>Schema</c>, <c>DocumentStoreName</c>, <c>Partitions</c>.
    /// </summary>
    /// <param name="types">The registry.</param>
    /// <returns>The registry.</returns>
    public static StoreTypeRegistry AddPostgreSql(this StoreTypeRegistry types)
    {
        ArgumentNullException.ThrowIfNull(types);
        return types.Add("PostgreSql", StoreRoles.Source | StoreRoles.ChangeLog, store =>
        {
            var check = new PostgreSqlSyncOptions();
            store.Bind(check);
            store.Validate(check.Validate, nameof(PostgreSqlSyncOptions));
            var bind = store.CreateBinder<PostgreSqlSyncOptions>();
            if (store.Role.HasFlag(StoreRoles.Source))
            {
                store.Builder.UsePostgreSql(bind);
            }
            else
            {
                store.Builder.UsePostgreSqlChangeLog(bind);
            }
        });
    }
}
