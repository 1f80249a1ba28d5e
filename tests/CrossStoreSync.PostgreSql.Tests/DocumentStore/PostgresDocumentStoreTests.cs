using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Stores;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>What the PostgreSQL document store adds to the shared suite: the outbox entry point, concurrency, DDL, errors.</summary>
public sealed class PostgresDocumentStoreTests(DocumentStoreDatabase database) : IClassFixture<DocumentStoreDatabase>
{
    private static readonly CollectionDefinition[] Collections = [new("items", 4, VectorDistance.Cosine), new("notes", null, VectorDistance.Cosine)];

    private static HlcTimestamp V(long ms) => new(1_700_000_000_000 + ms, 0, 1);

    private static SyncEntity Item(string id, string text = "hello", string collection = "items", float[]? vector = null, SyncEdge[]? edges = null) => new(
        new EntityKey(collection, id),
        Encoding.UTF8.GetBytes($"{{\"text\":\"{text}\",\"n\":2.50}}"),
        vector ?? [1, 2, 3, 4],
        edges ?? [new SyncEdge("MENTIONS", new EntityKey(collection, "t-" + id), Encoding.UTF8.GetBytes("{\"w\":1}"))]);

    private async Task<PostgresDocumentStore> StoreAsync()
    {
        var store = database.NewStore();
        await store.InitializeAsync(Collections, CancellationToken.None);
        return store;
    }

    [Fact]
    public async Task ApplyWithin_rolled_back_by_the_caller_leaves_nothing()
    {
        var store = await StoreAsync();
        var change = EntityChange.Upsert(Item("a"), V(1));
        var fresh = EntityChange.Upsert(Item("b", collection: "fresh", vector: []), V(1));

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.ApplyWithinAsync(connection, transaction, [change, fresh], CancellationToken.None);

            // Visible inside the transaction, including the table created on demand for "fresh".
            await using var probe = new NpgsqlCommand($"SELECT count(*) FROM {store.TableOf("fresh")}", connection, transaction);
            Assert.Equal(1L, await probe.ExecuteScalarAsync());
            await transaction.RollbackAsync();
        }

        Assert.Null(await store.ReadAsync(change.Key, CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("fresh", CancellationToken.None));
        Assert.Equal(DBNull.Value, await database.ScalarAsync("SELECT to_regclass($1)::text", store.TableOf("fresh")));

        // The rolled-back table creation is not remembered: the next transaction creates it again.
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.ApplyWithinAsync(connection, transaction, [change, fresh], CancellationToken.None);
            await transaction.CommitAsync();
        }

        Assert.Equal(V(1), (await store.ReadAsync(change.Key, CancellationToken.None))?.Version);
        Assert.Equal(V(1), (await store.ReadAsync(fresh.Key, CancellationToken.None))?.Version);
    }

    [Fact]
    public async Task ApplyWithin_commits_together_with_the_callers_own_writes()
    {
        var store = await StoreAsync();
        await database.ExecuteAsync("CREATE TABLE IF NOT EXISTS outbox_probe (id text PRIMARY KEY)");
        var change = EntityChange.Upsert(Item("together"), V(1));

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.ApplyWithinAsync(connection, transaction, [change], CancellationToken.None);
            await using var append = new NpgsqlCommand("INSERT INTO outbox_probe (id) VALUES ($1)", connection, transaction);
            append.Parameters.Add(new NpgsqlParameter { Value = "together" });
            await append.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }

        Assert.NotNull(await store.ReadAsync(change.Key, CancellationToken.None));
        Assert.Equal(1L, await database.ScalarAsync("SELECT count(*) FROM outbox_probe WHERE id = 'together'"));
    }

    [Fact]
    public async Task An_invalid_change_is_rejected_before_anything_is_sent_and_the_callers_transaction_stays_usable()
    {
        var store = await StoreAsync();
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var bad = EntityChange.Upsert(Item("bad", vector: [1, 2, 3]), V(1));

        var error = await Assert.ThrowsAsync<SyncStoreException>(() => store.ApplyWithinAsync(connection, transaction, [EntityChange.Upsert(Item("ok"), V(1)), bad], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(bad.Key, error.Key);

        await store.ApplyWithinAsync(connection, transaction, [EntityChange.Upsert(Item("ok"), V(1))], CancellationToken.None);
        await transaction.CommitAsync();
        Assert.Equal(1, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_applies_of_one_key_from_two_connections_keep_the_newest_version()
    {
        var schema = DocumentStoreDatabase.NewSchema();
        await using var otherSource = NpgsqlDataSource.Create(database.Database.ConnectionString);
        var first = new PostgresDocumentStore(database.DataSource, "documents", schema);
        var second = new PostgresDocumentStore(otherSource, "documents", schema);
        await Task.WhenAll(first.InitializeAsync(Collections, CancellationToken.None).AsTask(), second.InitializeAsync(Collections, CancellationToken.None).AsTask());

        // Both writers hammer the same keys (in opposite orders, so their row locks would cross) with interleaved versions.
        var keys = Enumerable.Range(0, 20).Select(i => "hot" + i).ToArray();
        async Task Writer(PostgresDocumentStore store, int parity)
        {
            for (var v = parity; v <= 60; v += 2)
            {
                var ordered = parity == 1 ? keys : keys.Reverse().ToArray();
                await using var connection = await database.DataSource.OpenConnectionAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await store.ApplyWithinAsync(connection, transaction, ordered.Select(k => EntityChange.Upsert(Item(k, "v" + v), V(v))).ToArray(), CancellationToken.None);
                await transaction.CommitAsync();
            }
        }

        await Task.WhenAll(Task.Run(() => Writer(first, 1)), Task.Run(() => Writer(second, 2)));

        var digests = await first.ReadDigestsAsync("items", keys, CancellationToken.None);
        Assert.Equal(keys.Length, digests.Count);
        Assert.All(digests, d =>
        {
            Assert.Equal(V(60), d.Version);
            Assert.Equal(EntityEncoding.ComputeContentHash(Item(d.Key.Id, "v60")), d.RecordedHash);
            Assert.Equal(d.RecordedHash, d.ProjectionHash);
        });
    }

    [Fact]
    public async Task Several_processes_initialising_the_same_schema_at_once_all_succeed()
    {
        var schema = DocumentStoreDatabase.NewSchema();
        var sources = Enumerable.Range(0, 6).Select(_ => NpgsqlDataSource.Create(database.Database.ConnectionString)).ToArray();
        try
        {
            var stores = sources.Select(s => new PostgresDocumentStore(s, "documents", schema)).ToArray();
            var many = Enumerable.Range(0, 10).Select(i => new CollectionDefinition("c" + i, 4, VectorDistance.Cosine)).ToArray();
            await Task.WhenAll(stores.Select(s => Task.Run(async () => await s.InitializeAsync(many, CancellationToken.None))));
            await Task.WhenAll(stores.Select((s, i) => Task.Run(async () => await s.ApplyAsync([EntityChange.Upsert(Item("x" + i, collection: "ondemand", vector: []), V(1))], CancellationToken.None))));

            Assert.Equal(10L, await database.ScalarAsync("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'doc\\_c%'", schema));
            Assert.Equal(6, await stores[0].CountAsync("ondemand", CancellationToken.None));
        }
        finally
        {
            foreach (var source in sources)
            {
                await source.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_collection_not_passed_to_Initialize_gets_its_table_on_the_first_write()
    {
        var store = await StoreAsync();
        var longName = "L" + new string('x', 63);
        Assert.Equal(0, await store.CountAsync(longName, CancellationToken.None));
        Assert.Empty(await store.ReadDigestsAsync(longName, ["a"], CancellationToken.None));

        var entity = Item("a", collection: longName, vector: [0.5f, 0.25f, 8, 9, 10]);
        await store.ApplyAsync([EntityChange.Upsert(entity, V(1))], CancellationToken.None);

        var read = await store.ReadAsync(entity.Key, CancellationToken.None);
        Assert.Equal(entity.Vector.ToArray(), read!.Entity.Vector.ToArray());
        Assert.Contains("$", store.TableOf(longName), StringComparison.Ordinal);
        Assert.Equal((long)Collections.Length + 1, await database.ScalarAsync("SELECT count(*) FROM pg_tables WHERE schemaname = $1", store.Schema));
    }

    [Fact]
    public async Task A_table_dropped_outside_the_library_is_created_again_by_the_next_write()
    {
        var store = await StoreAsync();
        await store.ApplyAsync([EntityChange.Upsert(Item("before"), V(1))], CancellationToken.None);
        await database.ExecuteAsync($"DROP TABLE {store.TableOf("items")}");

        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
        await store.ApplyAsync([EntityChange.Upsert(Item("after"), V(2))], CancellationToken.None);
        Assert.Equal(["after"], (await store.ScanAsync("items", null, 10, CancellationToken.None)).Select(e => e.Entity.Key.Id).ToArray());

        // Inside a caller's transaction the store cannot retry: it reports a transient error and recovers on the retry.
        await database.ExecuteAsync($"DROP TABLE {store.TableOf("items")}");
        await store.ApplyAsync([EntityChange.Upsert(Item("warm"), V(3))], CancellationToken.None);
        await database.ExecuteAsync($"DROP TABLE {store.TableOf("items")}");
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            var error = await Assert.ThrowsAsync<SyncStoreException>(() => store.ApplyWithinAsync(connection, transaction, [EntityChange.Upsert(Item("within"), V(4))], CancellationToken.None));
            Assert.True(error.IsTransient, error.Message);
        }

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.ApplyWithinAsync(connection, transaction, [EntityChange.Upsert(Item("within"), V(4))], CancellationToken.None);
            await transaction.CommitAsync();
        }

        Assert.Equal(V(4), (await store.ReadAsync(new EntityKey("items", "within"), CancellationToken.None))?.Version);
    }

    [Fact]
    public async Task RemoveByOrigin_deletes_only_rows_still_tagged_and_a_newer_change_clears_the_tag()
    {
        var store = await StoreAsync();
        await store.ApplyAsync(
            [
                EntityChange.Upsert(Item("m1"), V(1)).WithOrigin("migration-7"),
                EntityChange.Upsert(Item("m2"), V(1)).WithOrigin("migration-7"),
                EntityChange.Delete(new EntityKey("items", "m3"), V(1)).WithOrigin("migration-7"),
            ],
            CancellationToken.None);
        await store.ApplyAsync([EntityChange.Upsert(Item("m2", "newer"), V(2))], CancellationToken.None);
        var table = store.TableOf("items");
        Assert.Equal(DBNull.Value, await database.ScalarAsync($"SELECT origin FROM {table} WHERE id = 'm2'"));
        Assert.Equal("migration-7", await database.ScalarAsync($"SELECT origin FROM {table} WHERE id = 'm1'"));

        Assert.Equal(2, await store.RemoveByOriginAsync("items", "migration-7", CancellationToken.None));
        Assert.Equal(["m2"], (await store.ScanAsync("items", null, 10, CancellationToken.None)).Select(e => e.Entity.Key.Id).ToArray());
        Assert.Equal(1L, await database.ScalarAsync($"SELECT count(*) FROM {table}"));
        Assert.Equal(0, await store.RemoveByOriginAsync("nothing_here", "migration-7", CancellationToken.None));
    }

    [Fact]
    public async Task Bucket_scan_reads_only_the_requested_parts_but_always_the_whole_entitys_version_and_hash()
    {
        var store = await StoreAsync();
        var entities = Enumerable.Range(0, 300).Select(i => Item("p" + i)).ToArray();
        var changes = entities.Select(e => EntityChange.Upsert(e, V(3))).ToArray();
        await store.ApplyAsync(changes, CancellationToken.None);

        var page = await store.ScanBucketsAsync("items", BucketRange.All, null, 500, EntityParts.Edges, CancellationToken.None);
        Assert.Equal(300, page.Count);
        Assert.Equal(page.Select(e => (long)KeyHash.Bucket(e.Entity.Key)).Order(), page.Select(e => (long)KeyHash.Bucket(e.Entity.Key)));
        var hashes = changes.ToDictionary(c => c.Key.Id, c => c.ContentHash);
        Assert.All(page, e =>
        {
            Assert.True(e.Entity.Document.IsEmpty);
            Assert.False(e.Entity.HasVector);
            Assert.Equal("t-" + e.Entity.Key.Id, Assert.Single(e.Entity.Edges).Target.Id);
            Assert.Equal(V(3), e.Version);
            Assert.Equal(hashes[e.Entity.Key.Id], e.ContentHash);
        });

        var half = BucketRange.ForPrefix(1, 1);
        var all = await store.ScanBucketsAsync("items", half, null, 500, EntityParts.All, CancellationToken.None);
        Assert.Equal(entities.Count(e => half.Contains(KeyHash.Bucket(e.Key))), all.Count);
        Assert.All(all, e => Assert.Equal(hashes[e.Entity.Key.Id], EntityEncoding.ComputeContentHash(e.Entity)));
    }

    [Fact]
    public async Task A_vector_of_the_wrong_dimension_is_rejected_naming_the_key_and_both_dimensions()
    {
        var store = await StoreAsync();
        var bad = EntityChange.Upsert(Item("bad", vector: [1, 2, 3]), V(1));
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([EntityChange.Upsert(Item("ok"), V(1)), bad], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Contains("'items/bad'", error.Message, StringComparison.Ordinal);
        Assert.Contains("dimension 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("expects 4", error.Message, StringComparison.Ordinal);

        var unexpected = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([EntityChange.Upsert(Item("n", collection: "notes"), V(1))], CancellationToken.None));
        Assert.Contains("configured without vectors", unexpected.Message, StringComparison.Ordinal);
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
    }

    [Fact]
    public async Task A_bad_collection_or_schema_name_is_rejected_naming_the_parameter_and_the_value()
    {
        var store = await StoreAsync();
        var collection = await Assert.ThrowsAsync<ArgumentException>(async () => await store.ScanAsync("items; DROP TABLE x", null, 10, CancellationToken.None));
        Assert.Equal("collection", collection.ParamName);
        Assert.Contains("items; DROP TABLE x", collection.Message, StringComparison.Ordinal);

        var schema = Assert.Throws<ArgumentException>(() => new PostgresDocumentStore(database.DataSource, "documents", "public\"; --"));
        Assert.Equal("schema", schema.ParamName);
        Assert.Contains("public\"; --", schema.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_document_postgres_cannot_hold_is_a_permanent_error_naming_the_store_and_the_reason()
    {
        var store = await StoreAsync();
        var entity = new SyncEntity(new EntityKey("items", "nul"), Encoding.UTF8.GetBytes("{\"a\":\"\\u0000\"}"), new float[] { 1, 2, 3, 4 });
        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([EntityChange.Upsert(entity, V(1))], CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Equal(entity.Key, error.Key);
        Assert.Contains("documents", error.Message, StringComparison.Ordinal);
        Assert.Contains("22P05", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_killed_under_ApplyWithin_is_a_transient_error()
    {
        var store = await StoreAsync();
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await database.ScalarAsync("SELECT pg_terminate_backend($1)", connection.ProcessID);

        var error = await Assert.ThrowsAsync<SyncStoreException>(() => store.ApplyWithinAsync(connection, transaction, [EntityChange.Upsert(Item("k"), V(1))], CancellationToken.None));
        Assert.True(error.IsTransient, error.Message);
    }

    [Fact]
    public async Task An_edit_made_directly_in_postgres_is_what_reads_return()
    {
        var store = await StoreAsync();
        var entity = Item("e");
        await store.ApplyAsync([EntityChange.Upsert(entity, V(1))], CancellationToken.None);
        Assert.Equal(entity.Document.ToArray(), (await store.ReadAsync(entity.Key, CancellationToken.None))!.Entity.Document.ToArray());

        // Reformatting that keeps the JSON value (jsonb sees no change) keeps the exact bytes.
        await database.ExecuteAsync($"UPDATE {store.TableOf("items")} SET document = '{{ \"n\": 2.5, \"text\": \"hello\" }}'::jsonb WHERE id = 'e'");
        Assert.Equal(entity.Document.ToArray(), (await store.ReadAsync(entity.Key, CancellationToken.None))!.Entity.Document.ToArray());

        await database.ExecuteAsync($"UPDATE {store.TableOf("items")} SET document = document || '{{\"text\":\"changed\"}}'::jsonb, vector = '{{9,9,9,9}}' WHERE id = 'e'");
        var read = (await store.ReadAsync(entity.Key, CancellationToken.None))!;
        Assert.Contains("changed", read.Entity.DocumentText, StringComparison.Ordinal);
        Assert.Equal([9f, 9, 9, 9], read.Entity.Vector.ToArray());
        var digest = Assert.Single(await store.ReadDigestsAsync("items", ["e"], CancellationToken.None));
        Assert.Equal(EntityEncoding.ComputeContentHash(entity), digest.RecordedHash);
        Assert.Equal(ProjectionHash.Compute(read.Entity, StoreKind.Document), digest.ProjectionHash);
        Assert.NotEqual(digest.RecordedHash, digest.ProjectionHash);
    }

    [Theory]
    [InlineData("40001", true)]
    [InlineData("40P01", true)]
    [InlineData("08006", true)]
    [InlineData("53300", true)]
    [InlineData("57P01", true)]
    [InlineData("57P03", true)]
    [InlineData("23505", false)]
    [InlineData("22P02", false)]
    [InlineData("42501", false)]
    [InlineData("42P01", false)]
    public void SqlStates_are_classified_as_transient_only_when_a_retry_can_help(string sqlState, bool transient) =>
        Assert.Equal(transient, PostgresSql.IsTransientSqlState(sqlState));
}
