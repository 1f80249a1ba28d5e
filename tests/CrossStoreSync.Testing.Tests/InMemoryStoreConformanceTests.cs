using CrossStoreSync.ConformanceKit;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Testing.Stores;

namespace CrossStoreSync.Testing.Tests;

internal static class Tamper
{
    public static ValueTask Edit(ISyncStore store, EntityKey key)
    {
        var edited = ((InMemorySyncStore)store).TamperBehindTheLibrary(key, e => new SyncEntity(
            e.Key,
            System.Text.Encoding.UTF8.GetBytes("{\"text\":\"edited out of band\"}"),
            e.Vector.IsEmpty ? e.Vector : e.Vector.ToArray().Select(x => x + 1).ToArray(),
            [.. e.Edges, new SyncEdge("INJECTED", new EntityKey(e.Key.Collection, "intruder"))]));
        Assert.True(edited);
        return ValueTask.CompletedTask;
    }
}

public sealed class InMemoryDocumentStoreConformance : DocumentStoreConformanceTests
{
    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new InMemoryDocumentStore());

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => Tamper.Edit(store, key);
}

public sealed class InMemoryVectorStoreConformance : VectorStoreConformanceTests
{
    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new InMemoryVectorStore());

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => Tamper.Edit(store, key);
}

public sealed class InMemoryGraphStoreConformance : GraphStoreConformanceTests
{
    protected override ValueTask<ISyncStore> CreateStoreAsync() => ValueTask.FromResult<ISyncStore>(new InMemoryGraphStore());

    protected override ValueTask TamperAsync(ISyncStore store, EntityKey key) => Tamper.Edit(store, key);
}
