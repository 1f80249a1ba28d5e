using System.Net;
using System.Net.Sockets;
using CrossStoreSync.Neo4j.Tests.Fakes;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.SurrealDb.Tests.Support;
using RagMemory;

namespace CrossStoreSync.Samples.Tests;

/// <summary>Runs samples/RagMemory against SurrealDB (the real engine) and the Qdrant and Neo4j fakes.</summary>
[Collection(SurrealDbCollection.Name)]
public sealed class RagMemorySampleTests(SurrealDbHost surreal) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("css-ragmemory").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task With_every_server_up_it_ingests_checks_searches_and_exits_0()
    {
        surreal.EnsureRunning();
        await using var qdrant = await FakeQdrantServer.StartAsync(apiKey: "qdrant-key");
        await using var neo4j = await FakeNeo4jServer.StartAsync(user: "neo4j", password: "secret");
        var output = new StringWriter();

        var code = await RagMemoryApp.RunAsync(
            [
                $"--RagMemory:DataDirectory={_directory}",
                $"--RagMemory:SurrealDb:Endpoint={surreal.Endpoint}",
                "--RagMemory:SurrealDb:Namespace=samples",
                "--RagMemory:SurrealDb:Database=rag_" + Guid.NewGuid().ToString("N"),
                $"--RagMemory:Qdrant:Address={qdrant.Address}",
                "--RagMemory:Qdrant:ApiKey=qdrant-key",
                $"--RagMemory:Neo4j:BaseAddress={neo4j.BaseAddress}",
                "--RagMemory:Neo4j:Password=secret",
            ],
            output);

        var text = output.ToString();
        Assert.True(code == 0, $"Exit code {code}:\n{text}");
        void Shows(string expected) => Assert.True(text.Contains(expected, StringComparison.Ordinal), $"The output lacks \"{expected}\":\n{text}");
        Shows("Ingested 16 chunks into SurrealDB; Qdrant and Neo4j: Synced.");
        Shows("qdrant: 16 consistent, 0 missing, 0 stale, 0 corrupted, 0 orphaned");
        Shows("neo4j: 16 consistent, 0 missing, 0 stale, 0 corrupted, 0 orphaned");

        // The chunk about catching up after an outage is the nearest to the question, and its graph neighbourhood
        // holds its topic (a placeholder: topics are not entities) and the chunks before and after it.
        var nearest = text.Split('\n').SkipWhile(l => !l.StartsWith("Nearest chunks", StringComparison.Ordinal)).Skip(1).First();
        Assert.StartsWith("  chunk-01 ", nearest, StringComparison.Ordinal);
        Shows("-> ABOUT topics/sync (placeholder)");
        Shows("-> NEXT chunks/chunk-02");
        Shows("<- NEXT chunks/chunk-00");
        Shows("Every store agrees with the source of truth.");
    }

    [Fact]
    public async Task Without_the_servers_it_names_each_unreachable_one_and_exits_2()
    {
        var output = new StringWriter();

        var code = await RagMemoryApp.RunAsync(
            [
                $"--RagMemory:DataDirectory={_directory}",
                $"--RagMemory:SurrealDb:Endpoint=http://127.0.0.1:{FreePort()}/",
                $"--RagMemory:Qdrant:Address=http://127.0.0.1:{FreePort()}/",
                $"--RagMemory:Neo4j:BaseAddress=http://127.0.0.1:{FreePort()}/",
                "--RagMemory:ProbeTimeout=00:00:02",
            ],
            output);

        var text = output.ToString();
        Assert.Equal(2, code);
        Assert.Equal(3, text.Split('\n').Count(l => l.Contains("UNREACHABLE", StringComparison.Ordinal)));
        Assert.Contains("Cannot run: SurrealDB (source of truth), Qdrant (vectors), Neo4j (graph) unreachable.", text, StringComparison.Ordinal);
        Assert.False(Directory.EnumerateFileSystemEntries(_directory).Any(), "Nothing may be written when a server is unreachable.");
    }

    /// <summary>A port nothing listens on: bound once by the OS, then released.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
