namespace CrossStoreSync.PostgreSql.Tests.Support;

/// <summary>A fresh PostgreSQL database and a fresh temporary directory (for SQLite replicas) per test, both removed after it.</summary>
public abstract class DatabaseAndDirectory(string prefix) : IAsyncLifetime
{
    /// <summary>The database.</summary>
    protected TestDatabase Database { get; private set; } = null!;

    /// <summary>The directory.</summary>
    protected string Dir { get; } = Path.Combine(Path.GetTempPath(), $"css-{prefix}-{Guid.NewGuid():N}");

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        Database = await PostgresServer.CreateDatabaseAsync(prefix);
        Directory.CreateDirectory(Dir);
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        await Database.DisposeAsync();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // A file a killed child process still held open; the directory is in the temp folder.
        }
    }
}
