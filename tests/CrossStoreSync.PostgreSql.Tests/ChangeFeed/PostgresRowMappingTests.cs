using System.Text.Json;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Log;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.ChangeFeed;

/// <summary>How rows become entities: the default mapping, filters, and large (TOASTed) values.</summary>
public sealed class PostgresRowMappingTests(CdcDatabaseFixture fixture) : IClassFixture<CdcDatabaseFixture>, IDisposable
{
    private readonly TestDatabase _db = fixture.Database;
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private void Configure(PostgresChangeFeedOptions o, string slot, string table, PostgresRowMapper? map = null)
    {
        o.ConnectionString = _db.ConnectionString;
        o.SlotName = slot;
        o.PublicationName = slot;
        o.StatusInterval = TimeSpan.FromMilliseconds(200);
        o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
        o.MapTable(table, "notes", map);
    }

    private static async Task<JsonElement> DocumentAsync(CdcEngine engine, string id)
    {
        var stored = await engine.Services.GetRequiredService<SqliteChangeLog>().Documents.ReadAsync(new EntityKey("notes", id), CancellationToken.None);
        Assert.NotNull(stored);
        using var json = JsonDocument.Parse(stored.Entity.DocumentText);
        return json.RootElement.Clone();
    }

    [Fact]
    public async Task The_default_mapping_turns_every_column_into_the_document()
    {
        var table = Cdc.UniqueName("typed");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id bigint PRIMARY KEY, n numeric, at timestamptz, ok boolean, meta jsonb, labels text[], raw bytea, missing text)");
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, table));
            var lsn = await _db.CommitAsync($"INSERT INTO {table} VALUES (42, 1.25, '2026-01-02T03:04:05Z', true, '{{\"a\": [1, 2]}}', ARRAY['x', 'y'], '\\x0102', NULL)");
            await engine.SyncedAsync(lsn);

            var doc = await DocumentAsync(engine, "42");
            Assert.Equal(42, doc.GetProperty("id").GetInt64());
            Assert.Equal(1.25m, doc.GetProperty("n").GetDecimal());
            Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), doc.GetProperty("at").GetDateTimeOffset());
            Assert.True(doc.GetProperty("ok").GetBoolean());
            Assert.Equal(2, doc.GetProperty("meta").GetProperty("a")[1].GetInt32());
            Assert.Equal("y", doc.GetProperty("labels")[1].GetString());
            Assert.Equal([1, 2], doc.GetProperty("raw").GetBytesFromBase64());
            Assert.Equal(JsonValueKind.Null, doc.GetProperty("missing").ValueKind);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_row_the_mapping_filters_out_is_removed_from_the_stores()
    {
        var table = Cdc.UniqueName("filtered");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, published boolean NOT NULL)");
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, table, (key, row) => row.Get<bool>("published") ? PostgresTableMapping.DefaultMap(key, row) : null));
            await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES ('a', true), ('b', false)"));
            var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
            Assert.NotNull(await docs.ReadAsync(new EntityKey("notes", "a"), CancellationToken.None));
            Assert.Null(await docs.ReadAsync(new EntityKey("notes", "b"), CancellationToken.None));

            await engine.SyncedAsync(await _db.CommitAsync($"UPDATE {table} SET published = NOT published"));
            Assert.Null(await docs.ReadAsync(new EntityKey("notes", "a"), CancellationToken.None));
            Assert.NotNull(await docs.ReadAsync(new EntityKey("notes", "b"), CancellationToken.None));
            await engine.AssertConsistentAsync("notes");
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_large_value_an_update_did_not_touch_is_taken_from_the_old_row_with_replica_identity_full()
    {
        var table = Cdc.UniqueName("toast");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, title text, body text); ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL; ALTER TABLE {table} REPLICA IDENTITY FULL");
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, table));
            await _db.CommitAsync($"INSERT INTO {table} VALUES ('a', 'first', repeat('b', 20000))");
            await engine.SyncedAsync(await _db.CommitAsync($"UPDATE {table} SET title = 'second'"));
            var doc = await DocumentAsync(engine, "a");
            Assert.Equal("second", doc.GetProperty("title").GetString());
            Assert.Equal(20000, doc.GetProperty("body").GetString()!.Length);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_large_value_that_was_not_sent_stops_the_feed_with_the_fix_instead_of_losing_it()
    {
        var table = Cdc.UniqueName("toast");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, title text, body text); ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL");
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, table));
            await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES ('a', 'first', repeat('b', 20000))"));
            var lsn = await _db.CommitAsync($"UPDATE {table} SET title = 'second'");

            var stopped = await Assert.ThrowsAsync<PostgresChangeFeedException>(() => engine.Feed.WaitForLsnAsync(lsn, Cdc.Wait));
            Assert.Equal("map", stopped.Operation);
            Assert.Contains("REPLICA IDENTITY FULL", stopped.Message, StringComparison.Ordinal);
            Assert.Contains($"table public.{table}", stopped.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<PostgresChangeFeedException>(() => engine.Feed.ExecuteTask!);
            var doc = await DocumentAsync(engine, "a");
            Assert.Equal("first", doc.GetProperty("title").GetString());
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }
}
