using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.SurrealDb.Tests.Support;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>
/// The shared drift scenarios with SurrealDB as the source of truth: every check mode reads the source's digests by
/// bucket range from SurrealDB. The replicas are SQLite, damaged with plain SQL as in CrossStoreSync.Sqlite.Tests.
/// Fewer entities than the SQLite run: the embedded engine writes about a thousand records a second here.
/// </summary>
[Collection(SurrealDbCollection.Name)]
public sealed class SurrealDbConsistencyScenarioTests(SurrealDbHost host) : ConsistencyScenarioTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    protected override int EntityCount => 2000;

    protected override async Task<IScenarioHarness> StartAsync()
    {
        var surreal = host.NewDatabaseOptions();
        var engine = await TestEngine.StartAsync(
            b =>
            {
                b.UseSqlite(o =>
                {
                    o.DirectoryPath = _dir.Path;
                    o.Durable = false;
                });
                b.AddSurrealDbDocumentStore(o =>
                {
                    o.Endpoint = surreal.Endpoint;
                    o.Namespace = surreal.Namespace;
                    o.Database = surreal.Database;
                });
            },
            o =>
            {
                o.AddCollection(Collection, Dimension);
                o.DispatchBatchSize = 2048;
            });
        return new Harness(engine);
    }

    private sealed class Harness(TestEngine engine) : IScenarioHarness
    {
        public ISyncManager Manager => engine.Manager;

        public IConsistencyChecker Checker => engine.Services.GetRequiredService<IConsistencyChecker>();

        public IVectorStore Vectors => engine.Services.GetRequiredService<SqliteVectorStore>();

        public IGraphStore Graph => engine.Services.GetRequiredService<SqliteGraphStore>();

        public Task EraseAsync(ISyncStore store, EntityKey key) => store is SqliteVectorStore
            ? Sql(store, "DELETE FROM vectors WHERE collection = $c AND id = $id", key)
            : Sql(store, "DELETE FROM edges WHERE src_collection = $c AND src_id = $id; DELETE FROM nodes WHERE collection = $c AND id = $id", key);

        public Task RollBackAsync(ISyncStore store, EntityKey key) =>
            Sql(store, $"UPDATE {(store is SqliteVectorStore ? "vectors" : "nodes")} SET version = version - 1000, hash = zeroblob(16) WHERE collection = $c AND id = $id", key);

        public Task TamperAsync(ISyncStore store, EntityKey key) => store is SqliteVectorStore
            ? Sql(store, "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE collection = $c AND id = $id", key)
            : Sql(store, "INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id) SELECT collection, bucket, id, 'INJECTED', collection, 'intruder' FROM nodes WHERE collection = $c AND id = $id", key);

        public async Task InsertOrphanAsync(ISyncStore store, SyncEntity entity)
        {
            var hash = new byte[16];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(hash, EntityEncoding.ComputeContentHash(entity));
            var sql = store is SqliteVectorStore
                ? "INSERT INTO vectors (collection, id, version, hash, bucket, deleted, vector) VALUES ($c, $id, 1000000, $h, $b, 0, $vec)"
                : "INSERT INTO nodes (collection, id, version, hash, bucket, deleted) VALUES ($c, $id, 1000000, $h, $b, 0)";
            await Sql(store, sql, entity.Key, ("$h", hash), ("$b", (long)KeyHash.Bucket(entity.Key)), ("$vec", System.Runtime.InteropServices.MemoryMarshal.AsBytes(entity.Vector.Span).ToArray()));
        }

        public ValueTask DisposeAsync() => engine.DisposeAsync();

        private static async Task Sql(ISyncStore store, string sql, EntityKey key, params (string Name, object Value)[] extra)
        {
            await using var connection = new SqliteConnection($"Data Source={((SqliteStoreBase)store).DatabasePath}");
            await connection.OpenAsync();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$c", key.Collection);
            command.Parameters.AddWithValue("$id", key.Id);
            foreach (var (name, value) in extra)
            {
                if (sql.Contains(name, StringComparison.Ordinal))
                {
                    command.Parameters.AddWithValue(name, value);
                }
            }

            Assert.True(await command.ExecuteNonQueryAsync() >= 1, $"Out-of-band edit changed nothing: {sql}");
        }
    }
}
