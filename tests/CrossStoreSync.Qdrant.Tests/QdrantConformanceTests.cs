using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>The shared vector-store conformance suite through Qdrant.Client against the gRPC <see cref="FakeQdrantServer"/>.</summary>
public sealed class QdrantConformanceTests : VectorStoreConformanceTests
{
    private FakeQdrantServer? _server;

    protected override async ValueTask<ISyncStore> CreateStoreAsync()
    {
        _server = await FakeQdrantServer.StartAsync(apiKey: "secret");
        return new QdrantVectorStore(new QdrantVectorStoreOptions { Address = _server.Address, ApiKey = "secret", BatchSize = 200 });
    }

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key)
    {
        var point = _server!.Point(key.Collection, PointIds.For(key.Id)) ?? throw new InvalidOperationException($"{key} is not stored.");
        point.Vectors["embedding"] = [0.5f, 0.5f, 0.5f, 0.5f];
        return ValueTask.CompletedTask;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_server is not null)
        {
            var violations = _server.Violations.ToArray();
            await _server.DisposeAsync();
            Assert.True(violations.Length == 0, "Calls the fake does not implement:\n" + string.Join('\n', violations));
        }
    }
}
