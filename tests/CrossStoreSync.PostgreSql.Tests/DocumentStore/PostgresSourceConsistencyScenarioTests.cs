using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>
/// The shared drift scenarios with PostgreSQL as the source of truth: every check mode reads the source's digests by
/// bucket range from PostgreSQL. The replicas are SQLite, damaged with plain SQL behind the library's back.
/// </summary>
public sealed class PostgresSourceConsistencyScenarioTests(DocumentStoreDatabase database) : ConsistencyScenarioTests, IClassFixture<DocumentStoreDatabase>
{
    protected override int EntityCount => 4000;

    protected override async Task<IScenarioHarness> StartAsync()
    {
        var host = await PostgresSourceEngine.StartAsync(database, o =>
        {
            o.AddCollection(Collection, Dimension);
            o.DispatchBatchSize = 2048;
        });
        return new Harness(host);
    }

    private sealed class Harness(PostgresSourceEngine host) : IScenarioHarness
    {
        public ISyncManager Manager => host.Engine.Manager;

        public IConsistencyChecker Checker => host.Engine.Services.GetRequiredService<IConsistencyChecker>();

        public IVectorStore Vectors => host.Engine.Services.GetRequiredService<SqliteVectorStore>();

        public IGraphStore Graph => host.Engine.Services.GetRequiredService<SqliteGraphStore>();

        public Task EraseAsync(ISyncStore store, EntityKey key) => Run(
            store,
            store is SqliteVectorStore
                ? "DELETE FROM vectors WHERE collection = $c AND id = $id"
                : "DELETE FROM edges WHERE src_collection = $c AND src_id = $id; DELETE FROM nodes WHERE collection = $c AND id = $id",
            key);

        public Task RollBackAsync(ISyncStore store, EntityKey key) => Run(
            store,
            $"UPDATE {(store is SqliteVectorStore ? "vectors" : "nodes")} SET version = version - 1000, hash = zeroblob(16) WHERE collection = $c AND id = $id",
            key);

        public Task TamperAsync(ISyncStore store, EntityKey key) => Run(
            store,
            store is SqliteVectorStore
                ? "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE collection = $c AND id = $id"
                : "INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id) SELECT collection, bucket, id, 'INJECTED', collection, 'intruder' FROM nodes WHERE collection = $c AND id = $id",
            key);

        public Task InsertOrphanAsync(ISyncStore store, SyncEntity entity)
        {
            var hash = new byte[16];
            BinaryPrimitives.WriteUInt128BigEndian(hash, EntityEncoding.ComputeContentHash(entity));
            var bucket = (long)KeyHash.Bucket(entity.Key);
            return store is SqliteVectorStore
                ? Run(store, "INSERT INTO vectors (collection, id, version, hash, bucket, deleted, vector) VALUES ($c, $id, 1000000, $h, $b, 0, $vec)", entity.Key, ("$h", hash), ("$b", bucket), ("$vec", MemoryMarshal.AsBytes(entity.Vector.Span).ToArray()))
                : Run(store, "INSERT INTO nodes (collection, id, version, hash, bucket, deleted) VALUES ($c, $id, 1000000, $h, $b, 0)", entity.Key, ("$h", hash), ("$b", bucket));
        }

        public ValueTask DisposeAsync() => host.DisposeAsync();

        private static async Task Run(ISyncStore store, string sql, EntityKey key, params (string Name, object Value)[] extra)
        {
            await using var connection = new SqliteConnection($"Data Source={((SqliteStoreBase)store).DatabasePath}");
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$c", key.Collection);
            command.Parameters.AddWithValue("$id", key.Id);
            foreach (var (name, value) in extra)
            {
                command.Parameters.AddWithValue(name, value);
            }

            Assert.True(await command.ExecuteNonQueryAsync() >= 1, $"The out-of-band edit changed nothing: {sql}");
        }
    }
}
