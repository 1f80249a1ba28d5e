using CrossStoreSync.Configuration;
using CrossStoreSync.Neo4j;
using CrossStoreSync.PostgreSql;
using CrossStoreSync.Qdrant;
using CrossStoreSync.Stores;
using CrossStoreSync.SurrealDb;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Cli.Tests;

/// <summary><c>AddCrossStoreSync(configuration, types =&gt; ...)</c>: every store package's type, and every kind of bad key.</summary>
public sealed class ConfigurationBindingTests
{
    private static readonly Action<StoreTypeRegistry> AllTypes = t => t.AddSqlite().AddPostgreSql().AddSurrealDb().AddQdrant().AddNeo4j();

    [Fact]
    public void Options_collections_and_every_replica_type_are_bound_from_the_section()
    {
        var services = Register(new()
        {
            ["DispatchBatchSize"] = "64",
            ["RetryMaxDelay"] = "00:00:05",
            ["NodeId"] = "7",
            ["Collections:notes:VectorDimension"] = "384",
            ["Collections:notes:Distance"] = "dot",
            ["Collections:topics"] = "",
            ["ReplicasAwaitingBackfill:0"] = "qdrant-vectors",
            ["Source:Type"] = "Sqlite",
            ["Source:DirectoryPath"] = "data",
            ["Source:Durable"] = "false",
            ["Replicas:local-vectors:Type"] = "SqliteVectors",
            ["Replicas:local-vectors:Path"] = "data/v.db",
            ["Replicas:qdrant-vectors:Type"] = "qdrant",
            ["Replicas:qdrant-vectors:Address"] = "http://qdrant:6334",
            ["Replicas:qdrant-vectors:ApiKey"] = "secret",
            ["Replicas:qdrant-vectors:Collections:notes:VectorName"] = "dense",
            ["Replicas:graph:Type"] = "Neo4j",
            ["Replicas:graph:BaseAddress"] = "http://neo4j:7474",
            ["Replicas:graph:User"] = "neo4j",
            ["Replicas:graph:Password"] = "pw",
            ["Replicas:graph:BatchSize"] = "100",
        });
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<CrossStoreSync.Configuration.CrossStoreSyncOptions>>().Value;
        Assert.Equal(64, options.DispatchBatchSize);
        Assert.Equal(TimeSpan.FromSeconds(5), options.RetryMaxDelay);
        Assert.Equal(7, options.NodeId);
        Assert.True(options.TryGetCollection("notes", out var notes));
        Assert.Equal(384, notes.VectorDimension);
        Assert.Equal(VectorDistance.Dot, notes.Distance);
        Assert.True(options.TryGetCollection("topics", out var topics));
        Assert.Null(topics.VectorDimension);
        Assert.Equal(["qdrant-vectors"], options.ReplicasAwaitingBackfill);

        var qdrant = provider.GetRequiredService<IOptionsMonitor<QdrantVectorStoreOptions>>().Get("qdrant-vectors");
        Assert.Equal("qdrant-vectors", qdrant.StoreName);
        Assert.Equal(new Uri("http://qdrant:6334"), qdrant.Address);
        Assert.Equal("secret", qdrant.ApiKey);
        Assert.Equal("dense", qdrant.Collections["notes"].VectorName);
        var neo4j = provider.GetRequiredService<IOptionsMonitor<Neo4jGraphStoreOptions>>().Get("graph");
        Assert.Equal(("graph", "neo4j", "pw", 100), (neo4j.StoreName, neo4j.User, neo4j.Password, neo4j.BatchSize));
        Assert.Equal(new Uri("http://neo4j:7474"), neo4j.BaseAddress);
    }

    [Fact]
    public void A_SurrealDb_source_takes_a_PostgreSql_log()
    {
        var services = Register(new()
        {
            ["Collections:notes:VectorDimension"] = "4",
            ["Source:Type"] = "SurrealDb",
            ["Source:Endpoint"] = "http://surreal:8000",
            ["Source:Namespace"] = "app",
            ["Source:Username"] = "root",
            ["Source:Password"] = "root",
            ["Log:Type"] = "PostgreSql",
            ["Log:ConnectionString"] = "Host=db;Database=app;Username=app",
            ["Log:Partitions"] = "8",
        });
        using var provider = services.BuildServiceProvider();
        var surreal = provider.GetRequiredService<IOptions<SurrealDbOptions>>().Value;
        Assert.Equal((new Uri("http://surreal:8000"), "app", "root"), (surreal.Endpoint, surreal.Namespace, surreal.Username));
        var log = provider.GetRequiredService<IOptions<PostgreSqlSyncOptions>>().Value;
        Assert.Equal(("Host=db;Database=app;Username=app", 8), (log.ConnectionString, log.Partitions));
    }

    [Fact]
    public async Task An_all_SQLite_section_starts_an_engine_with_the_configured_stores()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"css-config-{Guid.NewGuid():N}");
        try
        {
            var services = Register(new()
            {
                ["Collections:notes:VectorDimension"] = "4",
                ["Source:Type"] = "Sqlite",
                ["Source:DirectoryPath"] = dir,
                ["Source:DocumentStoreName"] = "docs",
                ["Source:VectorStoreName"] = "vectors",
                ["Replicas:graph2:Type"] = "SqliteGraph",
                ["Replicas:graph2:Path"] = Path.Combine(dir, "g2.db"),
            });
            await using var provider = services.BuildServiceProvider();
            var sync = provider.GetRequiredService<ISyncManager>();
            var stores = (await sync.GetStatisticsAsync()).Select(s => s.Store).Order(StringComparer.Ordinal).ToArray();
            await ((IAsyncDisposable)sync).DisposeAsync();
            Assert.Equal(["docs", "graph2", "vectors"], stores);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Options_alone_need_no_store_types()
    {
        var configuration = Section(new() { ["Collections:notes:VectorDimension"] = "4", ["PollInterval"] = "00:00:02" });
        var services = new ServiceCollection();
        services.AddCrossStoreSync(configuration);
        using var provider = services.BuildServiceProvider();
        Assert.Equal(TimeSpan.FromSeconds(2), provider.GetRequiredService<IOptions<CrossStoreSync.Configuration.CrossStoreSyncOptions>>().Value.PollInterval);
    }

    public static TheoryData<string, string, string> BadKeys => new()
    {
        { "DispatchBatchSize", "lots", "CrossStoreSync:DispatchBatchSize is 'lots'; expected a whole number" },
        { "DispatchBatchSize", "0", "CrossStoreSync:DispatchBatchSize is 0; it must be in 1..100000" },
        { "RetryMaxDelay", "soon", "CrossStoreSync:RetryMaxDelay is 'soon'; expected a duration" },
        { "PollInterval", "-00:00:01", "CrossStoreSync:PollInterval is -00:00:01; it must be greater than zero" },
        { "DispatchBatchSzie", "5", "CrossStoreSync:DispatchBatchSzie is not a setting of CrossStoreSyncOptions" },
        { "Collections:notes:VectorDimension", "0", "CrossStoreSync:Collections:notes: Vector dimension of collection 'notes' must be in 1..65536" },
        { "Collections:notes:Distance", "Manhattan", "CrossStoreSync:Collections:notes:Distance is 'Manhattan'; expected one of Cosine, Dot" },
        { "Collections:notes:Dimension", "4", "CrossStoreSync:Collections:notes:Dimension is not a setting" },
        { "Source:Type", "", "CrossStoreSync:Source:Type is missing; set it to one of: PostgreSql, Sqlite, SurrealDb" },
        { "Source:Type", "Mongo", "CrossStoreSync:Source:Type is 'Mongo', which is not a known store type" },
        { "Source:Type", "Qdrant", "CrossStoreSync:Source:Type is 'Qdrant', which cannot be the source of truth" },
        { "Source:Durable", "maybe", "CrossStoreSync:Source:Durable is 'maybe'; expected true or false" },
        { "Source:Durabel", "true", "CrossStoreSync:Source:Durabel is not a setting of SqliteSyncOptions" },
        { "Source:DirectoryPath", " ", "CrossStoreSync:Source:DirectoryPath is ' '; it must name a folder" },
        { "Log:Type", "PostgreSql", "CrossStoreSync:Log is set, but a Sqlite source keeps its change log beside its documents" },
        { "Replicas:vectors:Address", "not a uri", "CrossStoreSync:Replicas:vectors:Address is 'not a uri'; expected an absolute URI" },
        { "Replicas:vectors:Address", "ftp://qdrant", "CrossStoreSync:Replicas:vectors:Address is 'ftp://qdrant/'; it must be an absolute http or https URL" },
        { "Replicas:vectors:StoreName", "other", "CrossStoreSync:Replicas:vectors:StoreName is not a setting of QdrantVectorStoreOptions" },
        { "Replicas:vectors:Collections:notes:Dimension", "-1", "CrossStoreSync:Replicas:vectors:Collections[notes].Dimension is -1; it must be in 1..65536" },
        { "Replicas:graph:BatchSize", "0", "CrossStoreSync:Replicas:graph:BatchSize is 0; it must be in 1..10000" },
        { "Replicas:graph:Type", "SqliteVectors", "CrossStoreSync:Replicas:graph:Path is ''; set the replica's database file" },
        { "Replicas:graph:Type", "SurrealDb", "CrossStoreSync:Replicas:graph:Type is 'SurrealDb', which cannot be a replica" },
    };

    [Theory]
    [MemberData(nameof(BadKeys))]
    public void A_bad_key_is_reported_with_its_path_and_value(string key, string value, string expected)
    {
        var values = Valid();
        values[key] = value;
        var ex = Assert.Throws<CrossStoreSyncConfigurationException>(() => Register(values));
        Assert.Contains(ex.Failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_problem_is_reported_at_once_and_missing_sections_are_named()
    {
        var values = Valid();
        values.Remove("Source:Type");
        values.Remove("Source:DirectoryPath");
        values.Remove("Collections:notes:VectorDimension");
        values["NodeId"] = "999";
        var ex = Assert.Throws<CrossStoreSyncConfigurationException>(() => Register(values));
        Assert.Contains(ex.Failures, f => f.StartsWith("CrossStoreSync:Source is missing", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.StartsWith("CrossStoreSync:NodeId is 999; it must be in 0..255", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.StartsWith("CrossStoreSync:Collections is empty", StringComparison.Ordinal));
        Assert.Contains(" - CrossStoreSync:NodeId is 999", ex.Message, StringComparison.Ordinal);

        var surreal = Valid();
        surreal["Source:Type"] = "SurrealDb";
        surreal.Remove("Source:DirectoryPath");
        surreal["Source:Endpoint"] = "http://surreal:8000";
        var noLog = Assert.Throws<CrossStoreSyncConfigurationException>(() => Register(surreal));
        Assert.Contains(noLog.Failures, f => f.StartsWith("CrossStoreSync:Log is missing: a SurrealDb source keeps no change log; add a Log section with a Type of PostgreSql, Sqlite", StringComparison.Ordinal));

        var noTypes = Assert.Throws<CrossStoreSyncConfigurationException>(() => new ServiceCollection().AddCrossStoreSync(Section(Valid())));
        Assert.Contains(noTypes.Failures, f => f.StartsWith("CrossStoreSync:Source is set, but no store types were given", StringComparison.Ordinal));
    }

    private static Dictionary<string, string?> Valid() => new()
    {
        ["Collections:notes:VectorDimension"] = "4",
        ["Source:Type"] = "Sqlite",
        ["Source:DirectoryPath"] = "data",
        ["Replicas:vectors:Type"] = "Qdrant",
        ["Replicas:vectors:Address"] = "http://qdrant:6334",
        ["Replicas:graph:Type"] = "Neo4j",
        ["Replicas:graph:BaseAddress"] = "http://neo4j:7474",
    };

    private static ServiceCollection Register(Dictionary<string, string?> values)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(Section(values), AllTypes);
        return services;
    }

    private static IConfigurationSection Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>("CrossStoreSync:" + v.Key, v.Value))).Build().GetSection("CrossStoreSync");
}
