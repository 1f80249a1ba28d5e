using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.Neo4j.Tests.Fakes;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>The shared graph-store conformance suite against <see cref="FakeNeo4jServer"/>.</summary>
public sealed class Neo4jConformanceTests : GraphStoreConformanceTests
{
    private readonly TestHttpClientFactory _clients = new();
    private FakeNeo4jServer? _server;

    protected override async ValueTask<ISyncStore> CreateStoreAsync()
    {
        _server = await FakeNeo4jServer.StartAsync();
        return new Neo4jGraphStore(_clients, new Neo4jGraphStoreOptions { BaseAddress = _server.BaseAddress, User = "neo4j", Password = "secret", BatchSize = 300 });
    }

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key)
    {
        lock (_server!.Graph.Sync)
        {
            var node = _server.Graph.Node(key.Collection, key.Id) ?? throw new InvalidOperationException($"{key} is not stored.");
            _server.Graph.AddRelationship(new FakeRelationship(node, node, "INJECTED", null, 99));
        }

        return ValueTask.CompletedTask;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_server is not null)
        {
            var violations = _server.Violations.ToArray();
            await _server.DisposeAsync();
            Assert.True(violations.Length == 0, "Requests the fake rejected:\n" + string.Join('\n', violations));
        }

        _clients.Dispose();
    }
}
