using System.Text.Json;
using System.Text.Json.Nodes;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Cli.Tests.Support;

/// <summary>
/// An application's folder: its appsettings.json (the "CrossStoreSync" section the tool reads) and its SQLite files.
/// The application itself is played by an engine built in the test from the same file with the same
/// <c>AddCrossStoreSync(configuration)</c> call, which writes entities and is stopped before the tool runs.
/// </summary>
public sealed class Deployment : IDisposable
{
    private Deployment(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string ConfigPath => Path.Combine(Directory, "appsettings.json");

    public string DataPath => Path.Combine(Directory, "data");

    /// <summary>SQLite for everything: source (with its log) in data/source.db, replicas vectors and graph.</summary>
    public static Deployment Sqlite() => Create(new JsonObject
    {
        ["Type"] = "Sqlite",
        ["DirectoryPath"] = "data",
        ["Durable"] = false,
    });

    /// <summary>PostgreSQL source with its outbox log; SQLite replicas vectors and graph.</summary>
    public static Deployment PostgreSql(string connectionString) => Create(new JsonObject
    {
        ["Type"] = "PostgreSql",
        ["ConnectionString"] = connectionString,
    });

    private static Deployment Create(JsonObject source)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"css-cli-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "data"));
        var settings = new JsonObject
        {
            ["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning" } },
            ["CrossStoreSync"] = new JsonObject
            {
                ["PollInterval"] = "00:00:00.050",
                ["RetryBaseDelay"] = "00:00:00.010",
                ["RetryMaxDelay"] = "00:00:00.200",
                ["Collections"] = new JsonObject
                {
                    ["notes"] = new JsonObject { ["VectorDimension"] = 4 },
                    ["topics"] = new JsonObject(),
                },
                ["Source"] = source,
                ["Replicas"] = new JsonObject
                {
                    ["vectors"] = new JsonObject { ["Type"] = "SqliteVectors", ["Path"] = "data/vectors.db", ["Durable"] = false },
                    ["graph"] = new JsonObject { ["Type"] = "SqliteGraph", ["Path"] = "data/graph.db", ["Durable"] = false },
                },
            },
        };
        File.WriteAllText(Path.Combine(directory, "appsettings.json"), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new Deployment(directory);
    }

    /// <summary>Runs the "application": writes <paramref name="count"/> notes (each with an edge) and waits until every store holds them.</summary>
    public async Task WriteNotesAsync(int count, int first = 0)
    {
        await using var app = BuildApplication();
        var sync = app.GetRequiredService<ISyncManager>();
        try
        {
            for (var start = first; start < first + count; start += 500)
            {
                var batch = Enumerable.Range(start, Math.Min(500, first + count - start)).Select(Note).ToArray();
                var ticket = await sync.WriteBatchAsync(batch);
                Assert.Equal(SyncWaitOutcome.Synced, await sync.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(60)));
            }
        }
        finally
        {
            // Stopped before the container disposes the stores, as a host does (hosted services stop first).
            await ((IAsyncDisposable)sync).DisposeAsync();
        }
    }

    /// <summary>The application's services, built from its appsettings.json as the application does.</summary>
    public ServiceProvider BuildApplication()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(ConfigPath).Build();
        var services = new ServiceCollection();
        services.AddLogging();

        // Relative paths in the configuration are the application's folder, as for the tool.
        var section = configuration.GetSection("CrossStoreSync");
        foreach (var replica in section.GetSection("Replicas").GetChildren())
        {
            replica["Path"] = Path.Combine(Directory, replica["Path"]!);
        }

        if (section["Source:DirectoryPath"] is { } dir)
        {
            section["Source:DirectoryPath"] = Path.Combine(Directory, dir);
        }

        services.AddCrossStoreSync(section, types => types.AddSqlite().AddPostgreSql());
        return services.BuildServiceProvider();
    }

    public static SyncEntity Note(int i) => SyncEntity.FromJson(
        new EntityKey("notes", $"n-{i}"),
        $$"""{"title":"note {{i}}","n":{{i}}}""",
        vector: new float[] { i, 1, 0.5f, -1 },
        edges: [new SyncEdge("ABOUT", new EntityKey("topics", $"t-{i % 7}"))]);

    /// <summary>Runs plain SQL against one of the SQLite files (data/vectors.db, data/graph.db, data/source.db).</summary>
    public int Sql(string file, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(DataPath, file)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteNonQuery();
    }

    /// <summary>Runs a query against one of the SQLite files and returns the first column of the first row.</summary>
    public object? Scalar(string file, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(DataPath, file)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    /// <summary>Adds a collection to the application's configuration (as an operator does before a re-embedding).</summary>
    public void AddCollection(string name, int vectorDimension)
    {
        var settings = JsonNode.Parse(File.ReadAllText(ConfigPath))!;
        settings["CrossStoreSync"]!["Collections"]![name] = new JsonObject { ["VectorDimension"] = vectorDimension };
        File.WriteAllText(ConfigPath, settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file a killed child still held; the folder is in the temp directory.
        }
    }
}
