using CrossStoreSync.Configuration;
using CrossStoreSync.Consistency;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.PostgreSql.Tests.Support;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Tests;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Tests.ChangeFeed;

/// <summary>One fresh database per test class; each test uses its own tables, publication and slot, and drops the slot.</summary>
public sealed class CdcDatabaseFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;

    public async Task InitializeAsync() => Database = await PostgresServer.CreateDatabaseAsync("cdc");

    public async Task DisposeAsync() => await Database.DisposeAsync();
}

/// <summary>SQL helpers for the CDC tests.</summary>
public static class Cdc
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>A slot/publication name unique to one test.</summary>
    public static string UniqueName(string prefix) => $"{prefix}_{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    /// <summary>Runs the statements in one transaction and returns the WAL position after its commit.</summary>
    public static async Task<NpgsqlLogSequenceNumber> CommitAsync(this TestDatabase database, params string[] statements)
    {
        await using var connection = await database.OpenAsync();
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            foreach (var sql in statements)
            {
                await using var command = new NpgsqlCommand(sql, connection, transaction);
                await command.ExecuteNonQueryAsync();
            }

            await transaction.CommitAsync();
        }

        await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_lsn()", connection);
        return (NpgsqlLogSequenceNumber)(await lsn.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Runs the statements in one transaction and returns the WAL insert position just before its commit: the feed
    /// reaches it by writing this transaction, with no heartbeat needed (nothing else writes the followed tables).
    /// </summary>
    public static async Task<NpgsqlLogSequenceNumber> CommitReturningInsertPositionAsync(this TestDatabase database, params string[] statements)
    {
        await using var connection = await database.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var sql in statements)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }

        await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()", connection, transaction);
        var position = (NpgsqlLogSequenceNumber)(await lsn.ExecuteScalarAsync())!;
        await transaction.CommitAsync();
        return position;
    }

    public static async Task<NpgsqlLogSequenceNumber?> SlotConfirmedAsync(this TestDatabase database, string slot)
    {
        await using var connection = await database.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", connection) { Parameters = { new() { Value = slot } } };
        return await command.ExecuteScalarAsync() is NpgsqlLogSequenceNumber lsn ? lsn : null;
    }

    /// <summary>Waits until no walsender holds the slot any more (a stopped feed's connection closes asynchronously).</summary>
    public static async Task WaitSlotInactiveAsync(this TestDatabase database, string slot)
    {
        await using var connection = await database.OpenAsync();
        using var deadline = new CancellationTokenSource(Wait);
        while (true)
        {
            await using var command = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", connection) { Parameters = { new() { Value = slot } } };
            if (await command.ExecuteScalarAsync(deadline.Token) is not true)
            {
                return;
            }

            await Task.Delay(20, deadline.Token);
        }
    }

    /// <summary>Drops a slot, ending the walsender that may still hold it after a feed stopped or its process died.</summary>
    public static async Task DropSlotAsync(this TestDatabase database, string slot)
    {
        await using var connection = await database.OpenAsync();
        using var deadline = new CancellationTokenSource(Wait);
        while (true)
        {
            await using var command = new NpgsqlCommand(
                """
                SELECT CASE WHEN active_pid IS NULL THEN (SELECT true FROM pg_drop_replication_slot(slot_name))
                            ELSE pg_terminate_backend(active_pid) AND false END
                FROM pg_replication_slots WHERE slot_name = $1
                """,
                connection)
            { Parameters = { new() { Value = slot } } };
            var result = await command.ExecuteScalarAsync(deadline.Token);
            if (result is null or true)
            {
                return;
            }

            // Terminated the holder; its slot is released as the backend exits, which a later round observes.
            await Task.Delay(20, deadline.Token);
        }
    }
}

/// <summary>The engine on embedded SQLite (source, vector and graph replicas) with the PostgreSQL feed, on a temp folder.</summary>
public sealed class CdcEngine : IAsyncDisposable
{
    private CdcEngine(TestEngine engine) => Engine = engine;

    public TestEngine Engine { get; }

    public IServiceProvider Services => Engine.Services;

    public ISyncManager Manager => Engine.Manager;

    public PostgresChangeFeed Feed => Services.GetRequiredService<PostgresChangeFeed>();

    public static async Task<CdcEngine> StartAsync(string directory, Action<PostgresChangeFeedOptions> feed, Action<CrossStoreSyncOptions>? configure = null) =>
        new(await TestEngine.StartAsync(
            b => b.UseSqlite(o => o.DirectoryPath = directory).AddPostgresChangeFeed(feed),
            o =>
            {
                o.AddCollection("notes", 4);
                o.AddCollection("tags", 4);
                configure?.Invoke(o);
            }));

    /// <summary>
    /// Builds the same services as <see cref="StartAsync"/>, starts the hosted services in order and returns the
    /// exception one of them throws, after stopping the ones that started (so no engine keeps running on the files).
    /// </summary>
    public static async Task<TException> StartFailsAsync<TException>(string directory, Action<PostgresChangeFeedOptions> feed)
        where TException : Exception
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 4);
                o.AddCollection("notes", 4);
                o.AddCollection("tags", 4);
            })
            .UseSqlite(o => o.DirectoryPath = directory)
            .AddPostgresChangeFeed(feed);
        await using var provider = services.BuildServiceProvider();
        var started = new List<Microsoft.Extensions.Hosting.IHostedService>();
        try
        {
            foreach (var hosted in provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
                started.Add(hosted);
            }
        }
        catch (TException expected)
        {
            return expected;
        }
        finally
        {
            for (var i = started.Count - 1; i >= 0; i--)
            {
                await started[i].StopAsync(CancellationToken.None);
            }
        }

        throw new Xunit.Sdk.XunitException($"The start did not fail with {typeof(TException).Name}.");
    }

    /// <summary>Waits until the feed handled everything before <paramref name="lsn"/> and every replica applied it.</summary>
    public async Task SyncedAsync(NpgsqlLogSequenceNumber lsn)
    {
        var ticket = await Feed.WaitForLsnAsync(lsn, Cdc.Wait);
        Assert.NotNull(ticket);
        Assert.Equal(SyncWaitOutcome.Synced, await Manager.WaitForSyncAsync(ticket.Value, Cdc.Wait));
    }

    public async Task AssertConsistentAsync(params string[] collections)
    {
        var checker = Services.GetRequiredService<IConsistencyChecker>();
        foreach (var collection in collections)
        {
            var report = await checker.CheckAsync(collection, new ConsistencyCheckOptions { Deep = true });
            Assert.True(report.IsConsistent, $"{collection}: {string.Join("; ", report.Stores.Select(s => $"{s.Store} inconsistent {s.Inconsistent}"))}");
        }
    }

    /// <summary>Every log entry of a collection, in log order.</summary>
    public async Task<List<EntityChange>> LogAsync(string collection)
    {
        var log = Services.GetRequiredService<SqliteChangeLog>();
        var all = new List<EntityChange>();
        var buffer = new List<CrossStoreSync.Log.LogRecord>();
        long after = 0;
        while (true)
        {
            buffer.Clear();
            await log.ReadCommittedAsync(after, 1000, buffer, CancellationToken.None);
            if (buffer.Count == 0)
            {
                return all;
            }

            foreach (var record in buffer)
            {
                if (record.Change.Key.Collection == collection)
                {
                    all.Add(record.Change);
                }

                after = record.Lsn;
            }
        }
    }

    public ValueTask DisposeAsync() => Engine.DisposeAsync();
}

/// <summary>A temp folder for the SQLite files.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "css-cdc-tests", Guid.NewGuid().ToString("N"));

    public TempFolder() => Directory.CreateDirectory(Path);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a lingering pool; the folder is under the temp directory.
        }
    }
}
