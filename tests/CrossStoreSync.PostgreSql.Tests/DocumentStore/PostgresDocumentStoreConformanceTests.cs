using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Stores;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>The shared document-store conformance suite against a real PostgreSQL server, one fresh schema per test.</summary>
public sealed class PostgresDocumentStoreConformanceTests(DocumentStoreDatabase database) : DocumentStoreConformanceTests, IClassFixture<DocumentStoreDatabase>
{
    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(database.NewStore());

    /// <summary>Edits the jsonb document with plain SQL, as another program would; the _sync columns stay as they were.</summary>
    protected override async ValueTask TamperAsync(ISyncStore store, EntityKey key)
    {
        var table = ((PostgresDocumentStore)store).TableOf(key.Collection);
        var changed = await database.ExecuteAsync($"UPDATE {table} SET document = jsonb_set(document, '{{text}}', '\"edited out of band\"') WHERE id = $1", key.Id);
        Assert.Equal(1, changed);
    }
}
