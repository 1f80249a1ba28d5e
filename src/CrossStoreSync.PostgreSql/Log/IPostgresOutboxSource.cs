using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>A document store in the change log's database that can write inside the log's transaction (the outbox).</summary>
internal interface IPostgresOutboxSource : IDocumentStore
{
    /// <summary>Applies changes inside the caller's open transaction; never commits or rolls back.</summary>
    Task ApplyWithinAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken);

    /// <summary>Creates the store's schema and tables inside the caller's transaction (idempotent).</summary>
    Task CreateTablesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken);
}
