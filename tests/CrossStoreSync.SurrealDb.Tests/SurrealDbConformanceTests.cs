using System.Text;
using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb.Internal;
using CrossStoreSync.SurrealDb.Tests.Support;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>The shared document-store conformance suite against the real SurrealDB 3 engine, one fresh database per test.</summary>
[Collection(SurrealDbCollection.Name)]
public sealed class SurrealDbConformanceTests(SurrealDbHost host) : DocumentStoreConformanceTests
{
    private SurrealDbOptions? _options;

    protected override ValueTask<ISyncStore> CreateStoreAsync()
    {
        _options = host.NewDatabaseOptions();
        return ValueTask.FromResult<ISyncStore>(host.NewStore(_options));
    }

    /// <summary>Edits the document directly in SurrealDB, as another program would: <c>_sync</c> stays as it was.</summary>
    protected override async ValueTask TamperAsync(ISyncStore store, EntityKey key)
    {
        var sql = new StringBuilder("UPDATE type::record(");
        SurrealQl.String(sql, key.Collection).Append(',');
        SurrealQl.String(sql, key.Id).Append(") SET data.text = \"edited out of band\" RETURN AFTER;");
        var items = await host.SqlAsync(_options!, sql.ToString());
        Assert.Equal(1, items[0].GetProperty("result").GetArrayLength());
    }
}
