using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Tests.Support;

/// <summary>Entities of the <c>items</c> collection (vector dimension 4) used by the engine tests.</summary>
internal static class Items
{
    public const string Collection = "items";
    public const int Dimension = 4;

    public static EntityKey Key(string id) => new(Collection, id);

    /// <summary>An entity whose document, vector and edge all depend on <paramref name="revision"/>, so every store's content changes with it.</summary>
    public static SyncEntity Entity(string id, int revision = 1) => new(
        Key(id),
        Encoding.UTF8.GetBytes($$"""{"id":"{{id}}","rev":{{revision}}}"""),
        new float[] { revision, 1f, 2f, 3f },
        [new SyncEdge("RELATES_TO", Key("hub"), Encoding.UTF8.GetBytes($$"""{"rev":{{revision}}}"""))]);
}
