using CrossStoreSync.Configuration;
using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.Sqlite.Tests;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>
/// An engine with a PostgreSQL document store as the source of truth (in a schema of its own) and the embedded SQLite
/// change log, vector and graph replicas in a scratch folder deleted on dispose.
/// </summary>
internal sealed class PostgresSourceEngine : IAsyncDisposable
{
    private readonly string _directory;

    private PostgresSourceEngine(TestEngine engine, PostgresDocumentStore source, string directory)
    {
        Engine = engine;
        Source = source;
        _directory = directory;
    }

    public TestEngine Engine { get; }

    public PostgresDocumentStore Source { get; }

    public static async Task<PostgresSourceEngine> StartAsync(DocumentStoreDatabase database, Action<CrossStoreSyncOptions>? configure = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "css-pg-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var source = new PostgresDocumentStore(database.DataSource, "pg-documents", DocumentStoreDatabase.NewSchema());
        var engine = await TestEngine.StartAsync(
            b =>
            {
                b.UseSqlite(o =>
                {
                    o.DirectoryPath = directory;
                    o.Durable = false;
                });
                b.UseSourceOfTruth(_ => source);
            },
            configure);
        return new PostgresSourceEngine(engine, source, directory);
    }

    public async ValueTask DisposeAsync()
    {
        await Engine.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a slow disposal is left to the temp cleaner.
        }
    }
}
