using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>A temporary folder deleted after the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "css-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open on a slow disposal is left for the OS temp cleaner.
        }
    }
}

internal static class SqliteTamper
{
    /// <summary>Edits the stored content with plain SQL, leaving the _sync columns untouched.</summary>
    public static async ValueTask Edit(SqliteStoreBase store, EntityKey key)
    {
        await using var connection = new SqliteConnection($"Data Source={store.DatabasePath}");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = store switch
        {
            SqliteDocumentStore => "UPDATE documents SET document = CAST('{\"text\":\"edited out of band\"}' AS BLOB) WHERE collection = $c AND id = $id",
            SqliteVectorStore => "UPDATE vectors SET vector = zeroblob(16) WHERE collection = $c AND id = $id",
            SqliteGraphStore => "INSERT INTO edges (src_collection, src_bucket, src_id, type, dst_collection, dst_id) SELECT collection, bucket, id, 'INJECTED', collection, 'intruder' FROM nodes WHERE collection = $c AND id = $id",
            _ => throw new ArgumentOutOfRangeException(nameof(store)),
        };
        command.Parameters.AddWithValue("$c", key.Collection);
        command.Parameters.AddWithValue("$id", key.Id);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }
}

public sealed class SqliteDocumentStoreConformance : DocumentStoreConformanceTests
{
    private readonly TempDirectory _dir = new();

    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new SqliteDocumentStore(_dir.File("docs.db")));

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => SqliteTamper.Edit((SqliteStoreBase)store, key);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>The document store that shares its file (and transactions) with the change log.</summary>
public sealed class SqliteCoupledDocumentStoreConformance : DocumentStoreConformanceTests
{
    private readonly TempDirectory _dir = new();
    private SqliteChangeLog? _log;

    protected override async ValueTask<ISyncStore> CreateStoreAsync()
    {
        _log = new SqliteChangeLog(_dir.File("source.db"));
        await _log.InitializeAsync(CancellationToken.None);
        return _log.Documents;
    }

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => SqliteTamper.Edit((SqliteStoreBase)store, key);

    public override async Task DisposeAsync()
    {
        if (_log is not null)
        {
            await _log.DisposeAsync();
        }

        _dir.Dispose();
    }
}

public sealed class SqliteVectorStoreConformance : VectorStoreConformanceTests
{
    private readonly TempDirectory _dir = new();

    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new SqliteVectorStore(_dir.File("vectors.db")));

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => SqliteTamper.Edit((SqliteStoreBase)store, key);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class SqliteGraphStoreConformance : GraphStoreConformanceTests
{
    private readonly TempDirectory _dir = new();

    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new SqliteGraphStore(_dir.File("graph.db")));

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => SqliteTamper.Edit((SqliteStoreBase)store, key);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }
}
