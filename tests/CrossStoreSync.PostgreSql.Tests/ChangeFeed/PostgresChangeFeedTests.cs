using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.ChangeFeed;

/// <summary>Rows written with plain SQL in application tables reach the engine's stores through logical replication.</summary>
public sealed class PostgresChangeFeedTests(CdcDatabaseFixture fixture) : IClassFixture<CdcDatabaseFixture>, IDisposable
{
    private readonly TestDatabase _db = fixture.Database;
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>notes(id text pk, title, meta jsonb, embedding real[], parent) → collection "notes" with a vector and a CHILD_OF edge.</summary>
    private static SyncEntity? MapNote(EntityKey key, PostgresRow row)
    {
        var parent = row.GetString("parent");
        return new SyncEntity(key, row.ToJson("embedding", "parent"), row.GetVector("embedding"), parent is null ? null : [new SyncEdge("CHILD_OF", new EntityKey("notes", parent))]);
    }

    private async Task<string> CreateNotesAsync()
    {
        var table = Cdc.UniqueName("notes");
        await _db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, title text NOT NULL, meta jsonb, embedding real[], parent text)");
        return table;
    }

    private void Configure(PostgresChangeFeedOptions o, string slot, params (string Table, string Collection, PostgresRowMapper? Map)[] tables)
    {
        o.ConnectionString = _db.ConnectionString;
        o.SlotName = slot;
        o.PublicationName = slot;
        o.StatusInterval = TimeSpan.FromMilliseconds(200);
        o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
        foreach (var (table, collection, map) in tables)
        {
            o.MapTable(table, collection, map);
        }
    }

    private static string Note(int i, string title, string? parent = null) =>
        string.Create(CultureInfo.InvariantCulture, $"('n{i}', '{title}', '{{\"i\": {i}}}', ARRAY[{i}, 1, 0, -1]::real[], {(parent is null ? "NULL" : "'" + parent + "'")})");

    [Fact]
    public async Task Inserts_updates_and_deletes_made_with_plain_SQL_reach_the_vector_and_graph_replicas()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote)));
            await _db.CommitAsync($"INSERT INTO {table} VALUES {string.Join(", ", Enumerable.Range(0, 50).Select(i => Note(i, "first", i == 0 ? null : "n0")))}");
            await _db.CommitAsync($"UPDATE {table} SET title = 'second' WHERE id IN ('n1', 'n2', 'n3')");
            await _db.CommitAsync($"UPDATE {table} SET parent = NULL WHERE id = 'n4'");
            var lsn = await _db.CommitAsync($"DELETE FROM {table} WHERE id IN ('n10', 'n11')");
            await engine.SyncedAsync(lsn);

            var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
            var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
            var graph = engine.Services.GetRequiredService<SqliteGraphStore>();
            foreach (var store in new ISyncStore[] { docs, vectors, graph })
            {
                Assert.Equal(48, await store.CountAsync("notes", CancellationToken.None));
            }

            var updated = (await docs.ReadAsync(new EntityKey("notes", "n2"), CancellationToken.None))!.Entity;
            using (var json = JsonDocument.Parse(updated.DocumentText))
            {
                Assert.Equal("second", json.RootElement.GetProperty("title").GetString());
                Assert.Equal(2, json.RootElement.GetProperty("meta").GetProperty("i").GetInt32());
            }

            Assert.Null(await docs.ReadAsync(new EntityKey("notes", "n10"), CancellationToken.None));
            var hits = await vectors.SearchAsync("notes", new float[] { 42, 1, 0, -1 }, 1, CancellationToken.None);
            Assert.Equal("n42", hits[0].Key.Id);
            var children = await graph.GetNeighborsAsync(new EntityKey("notes", "n0"), "CHILD_OF", EdgeDirection.Incoming, CancellationToken.None);
            Assert.Equal(49 - 2 - 1, children.Count);
            await engine.AssertConsistentAsync("notes");
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Rows_that_exist_before_the_first_start_are_copied_unless_turned_off(bool copy)
    {
        var table = await CreateNotesAsync();
        await _db.CommitAsync($"INSERT INTO {table} SELECT 'n' || i, 'old', NULL, ARRAY[i, 1, 0, -1]::real[], CASE WHEN i > 0 THEN 'n0' END FROM generate_series(0, 1199) i");
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o =>
            {
                Configure(o, slot, (table, "notes", MapNote));
                o.CopyExistingRows = copy;
            });
            var lsn = await _db.CommitAsync($"UPDATE {table} SET title = 'new' WHERE id = 'n5'", $"INSERT INTO {table} VALUES {Note(5000, "new")}");
            await engine.SyncedAsync(lsn);

            var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
            Assert.Equal(copy ? 1201 : 2, await docs.CountAsync("notes", CancellationToken.None));
            Assert.Contains("\"new\"", (await docs.ReadAsync(new EntityKey("notes", "n5"), CancellationToken.None))!.Entity.DocumentText, StringComparison.Ordinal);
            Assert.Equal(copy, await docs.ReadAsync(new EntityKey("notes", "n6"), CancellationToken.None) is not null);
            await engine.AssertConsistentAsync("notes");
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_large_transaction_over_two_tables_is_split_across_batches_with_a_key_change_and_deletes()
    {
        var notes = await CreateNotesAsync();
        var tags = Cdc.UniqueName("tags");
        await _db.ExecuteAsync($"CREATE TABLE {tags} (tenant int, name text, weight double precision, PRIMARY KEY (tenant, name))");
        var slot = Cdc.UniqueName("slot");
        var batches = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "CrossStoreSync" && instrument.Name == "crossstoresync.cdc.batch.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, _, tagList, _) =>
        {
            foreach (var tag in tagList)
            {
                if (tag.Key == "feed" && (string?)tag.Value == "postgres/" + slot)
                {
                    Interlocked.Increment(ref batches);
                }
            }
        });
        listener.Start();

        static SyncEntity MapTag(EntityKey key, PostgresRow row) =>
            new(key, row.ToJson(), new float[] { (float)row.Get<double>("weight"), 1, 0, 0 });

        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o =>
            {
                Configure(o, slot, (notes, "notes", MapNote), (tags, "tags", MapTag));
                o.BatchSize = 50;
            });

            // One transaction: 600 notes, 200 tags, then rewrites of some of them in the same transaction.
            var lsn = await _db.CommitAsync(
                $"INSERT INTO {notes} SELECT 'n' || i, 'first', NULL, ARRAY[i, 1, 0, -1]::real[], NULL FROM generate_series(0, 599) i",
                $"INSERT INTO {tags} SELECT i % 4, 'tag' || i, i FROM generate_series(0, 199) i",
                $"UPDATE {notes} SET title = 'again' WHERE id IN ('n5', 'n6')",
                $"DELETE FROM {tags} WHERE tenant = 3");
            await engine.SyncedAsync(lsn);

            lsn = await _db.CommitAsync(
                $"UPDATE {notes} SET id = 'renamed' WHERE id = 'n7'",
                $"UPDATE {tags} SET name = 'moved' WHERE tenant = 1 AND name = 'tag1'",
                $"DELETE FROM {notes} WHERE id = 'n8'");
            await engine.SyncedAsync(lsn);

            var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
            Assert.Equal(599, await docs.CountAsync("notes", CancellationToken.None));
            Assert.Equal(150, await docs.CountAsync("tags", CancellationToken.None));
            Assert.Null(await docs.ReadAsync(new EntityKey("notes", "n7"), CancellationToken.None));
            Assert.Contains("\"first\"", (await docs.ReadAsync(new EntityKey("notes", "renamed"), CancellationToken.None))!.Entity.DocumentText, StringComparison.Ordinal);
            Assert.Contains("\"again\"", (await docs.ReadAsync(new EntityKey("notes", "n5"), CancellationToken.None))!.Entity.DocumentText, StringComparison.Ordinal);
            Assert.Null(await docs.ReadAsync(new EntityKey("tags", "1/tag1"), CancellationToken.None));
            Assert.NotNull(await docs.ReadAsync(new EntityKey("tags", "1/moved"), CancellationToken.None));
            Assert.Null(await docs.ReadAsync(new EntityKey("tags", "3/tag3"), CancellationToken.None));

            // 852 row changes in the first transaction at 50 per batch: at least 18 batches, then the second one.
            Assert.True(Interlocked.Read(ref batches) >= 19, $"{batches} batches");
            await engine.AssertConsistentAsync("notes", "tags");
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task Changes_made_while_the_feed_is_stopped_arrive_after_a_restart_exactly_once()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using (var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote))))
            {
                await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(1, "a")}, {Note(2, "a")}"));
            }

            await _db.CommitAsync($"UPDATE {table} SET title = 'b' WHERE id = 'n1'");
            await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(3, "a")}");
            var lsn = await _db.CommitAsync($"DELETE FROM {table} WHERE id = 'n2'");

            await using (var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote))))
            {
                await engine.SyncedAsync(lsn);
                var log = await engine.LogAsync("notes");
                Assert.Equal(["n1", "n2", "n1", "n3", "n2"], log.Select(c => c.Key.Id).ToArray());
                Assert.Equal(ChangeKind.Delete, log[^1].Kind);
                await engine.AssertConsistentAsync("notes");
            }
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task Without_heartbeats_the_feed_follows_the_tables_and_confirms_what_it_wrote()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o =>
            {
                Configure(o, slot, (table, "notes", MapNote));
                o.HeartbeatInterval = TimeSpan.Zero;
            });
            await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(1, "a")}");
            var lsn = await _db.CommitReturningInsertPositionAsync($"INSERT INTO {table} VALUES {Note(2, "a")}");
            await engine.SyncedAsync(lsn);
            await engine.Feed.WaitForConfirmedAsync(lsn, Cdc.Wait);
            Assert.Equal(2, await engine.Services.GetRequiredService<SqliteChangeLog>().Documents.CountAsync("notes", CancellationToken.None));
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_lost_replication_connection_is_reopened_and_resumes_without_loss_or_duplicates()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        long reconnects = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "crossstoresync.cdc.reconnects")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (tags.ToArray().Contains(new KeyValuePair<string, object?>("feed", "postgres/" + slot)))
            {
                Interlocked.Add(ref reconnects, value);
            }
        });
        listener.Start();
        try
        {
            await using var engine = await CdcEngine.StartAsync(_dir.Path, o =>
            {
                Configure(o, slot, (table, "notes", MapNote));
                o.BatchSize = 20;
                o.ReconnectDelay = TimeSpan.FromMilliseconds(10);
            });
            await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} SELECT 'n' || i, 'first', NULL, ARRAY[i, 1, 0, -1]::real[], NULL FROM generate_series(0, 99) i"));

            // The server ends the walsender while a large transaction is still in the stream.
            await _db.CommitAsync($"UPDATE {table} SET title = 'second'");
            Assert.Equal(1L, await _db.ScalarAsync($"SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"));
            var lsn = await _db.CommitAsync($"UPDATE {table} SET title = 'third' WHERE id IN ('n1', 'n2')");
            await engine.SyncedAsync(lsn);

            Assert.True(Interlocked.Read(ref reconnects) >= 1);
            var log = await engine.LogAsync("notes");
            var perKey = log.GroupBy(c => c.Key.Id).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(100, perKey.Count);
            // Insert + 'second' for every row, + 'third' for two: each exactly once (the batches of 20 never merge them).
            Assert.Equal(3, perKey["n1"]);
            Assert.Equal(3, perKey["n2"]);
            Assert.All(perKey.Where(p => p.Key is not ("n1" or "n2")), p => Assert.Equal(2, p.Value));
            await engine.AssertConsistentAsync("notes");
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task Heartbeats_advance_the_slot_while_only_unrelated_tables_change()
    {
        var table = await CreateNotesAsync();
        var unrelated = Cdc.UniqueName("other");
        await _db.ExecuteAsync($"CREATE TABLE {unrelated} (id serial PRIMARY KEY, filler text)");
        var slot = Cdc.UniqueName("slot");
        try
        {
            var feed = "postgres/" + slot;
            long heartbeats = 0, written = 0, confirmed = 0;
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "CrossStoreSync" && instrument.Name.StartsWith("crossstoresync.cdc.", StringComparison.Ordinal))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                if (!tags.ToArray().Contains(new KeyValuePair<string, object?>("feed", feed)))
                {
                    return;
                }

                switch (instrument.Name)
                {
                    case "crossstoresync.cdc.heartbeats": Interlocked.Add(ref heartbeats, value); break;
                    case "crossstoresync.cdc.changes": Interlocked.Add(ref written, value); break;
                    case "crossstoresync.cdc.confirmed_lsn": Interlocked.Exchange(ref confirmed, value); break;
                }
            });
            listener.Start();

            await using var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote)));
            await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(1, "a")}"));
            var before = (await _db.SlotConfirmedAsync(slot))!.Value;
            NpgsqlTypes.NpgsqlLogSequenceNumber lsn = default;
            for (var i = 0; i < 20; i++)
            {
                lsn = await _db.CommitAsync($"INSERT INTO {unrelated} (filler) SELECT repeat('x', 500) FROM generate_series(1, 50)");
            }

            Assert.True(lsn > before);
            await engine.Feed.WaitForConfirmedAsync(lsn, Cdc.Wait);

            // The feed confirmed it; the server applies the status update it sends every StatusInterval.
            using var deadline = new CancellationTokenSource(Cdc.Wait);
            while ((await _db.SlotConfirmedAsync(slot))!.Value < lsn)
            {
                await Task.Delay(50, deadline.Token);
            }

            Assert.True(engine.Feed.ConfirmedLsn >= lsn);
            Assert.Single(await engine.LogAsync("notes"));

            // The instruments report it: heartbeats came back, one change was written, the confirmed LSN moved.
            listener.RecordObservableInstruments();
            Assert.True(Interlocked.Read(ref heartbeats) > 0);
            Assert.Equal(1, Interlocked.Read(ref written));
            Assert.True((ulong)Interlocked.Read(ref confirmed) >= (ulong)lsn);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_slot_dropped_while_the_feed_was_down_stops_the_start_with_a_typed_error_until_acknowledged()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using (var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote))))
            {
                await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(1, "a")}"));
            }

            await _db.DropSlotAsync(slot);
            await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(2, "lost")}");

            var lost = await CdcEngine.StartFailsAsync<PostgresReplicationSlotLostException>(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote)));
            Assert.Equal(PostgresSlotLossReason.Missing, lost.Reason);
            Assert.Equal(slot, lost.SlotName);
            Assert.StartsWith("pgoutput/1;tx=", lost.SavedPosition, StringComparison.Ordinal);
            Assert.Contains("AcknowledgeSlotLossAsync", lost.Message, StringComparison.Ordinal);
            Assert.Contains("IMigrationManager", lost.Message, StringComparison.Ordinal);

            // Acknowledged: a fresh slot; the start copies the rows (n2 written during the outage comes back) and
            // changes from then on flow again.
            await AcknowledgeAsync(table, slot);
            await using (var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote))))
            {
                await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(3, "after")}"));
                var docs = engine.Services.GetRequiredService<SqliteChangeLog>().Documents;
                Assert.NotNull(await docs.ReadAsync(new EntityKey("notes", "n3"), CancellationToken.None));
                Assert.NotNull(await docs.ReadAsync(new EntityKey("notes", "n2"), CancellationToken.None));
                await engine.AssertConsistentAsync("notes");
            }
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_slot_advanced_without_the_feed_is_reported_as_lost()
    {
        var table = await CreateNotesAsync();
        var slot = Cdc.UniqueName("slot");
        try
        {
            await using (var engine = await CdcEngine.StartAsync(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote))))
            {
                await engine.SyncedAsync(await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(1, "a")}"));
            }

            await _db.WaitSlotInactiveAsync(slot);
            await _db.CommitAsync($"INSERT INTO {table} VALUES {Note(2, "skipped")}");
            await _db.ScalarAsync($"SELECT pg_replication_slot_advance('{slot}', pg_current_wal_lsn())");

            var lost = await CdcEngine.StartFailsAsync<PostgresReplicationSlotLostException>(_dir.Path, o => Configure(o, slot, (table, "notes", MapNote)));
            Assert.Equal(PostgresSlotLossReason.AdvancedElsewhere, lost.Reason);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    [Fact]
    public async Task A_missing_table_or_a_table_without_key_is_refused_at_start_with_its_name()
    {
        var keyless = Cdc.UniqueName("keyless");
        await _db.ExecuteAsync($"CREATE TABLE {keyless} (title text)");
        var slot = Cdc.UniqueName("slot");
        try
        {
            var missing = await CdcEngine.StartFailsAsync<PostgresChangeFeedException>(_dir.Path, o => Configure(o, slot, ("public.nowhere", "notes", null)));
            Assert.Contains("public.nowhere does not exist", missing.Message, StringComparison.Ordinal);
            var noKey = await CdcEngine.StartFailsAsync<PostgresChangeFeedException>(_dir.Path, o => Configure(o, slot, (keyless, "notes", null)));
            Assert.Contains($"public.{keyless} has no replica identity", noKey.Message, StringComparison.Ordinal);
        }
        finally
        {
            await _db.DropSlotAsync(slot);
        }
    }

    private async Task AcknowledgeAsync(string table, string slot)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(o => o.AddCollection("notes", 4))
            .UseSqlite(o => o.DirectoryPath = _dir.Path)
            .AddPostgresChangeFeed(o => Configure(o, slot, (table, "notes", MapNote)));
        await using var provider = services.BuildServiceProvider();
        var feed = provider.GetRequiredService<PostgresChangeFeed>();
        var start = await feed.AcknowledgeSlotLossAsync();
        Assert.Equal(start, (await _db.SlotConfirmedAsync(slot))!.Value);
    }
}
