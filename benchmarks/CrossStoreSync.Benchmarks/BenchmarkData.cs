using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Benchmarks;

/// <summary>The entity shape of the issue's targets: a 1 KB JSON document, a 384-dimension vector and 2 edges.</summary>
internal static class BenchmarkData
{
    public const int Dimension = 384;
    public const string Collection = "items";

    /// <summary>Entities <paramref name="start"/>..start+count-1 of a set of <paramref name="total"/>, generated lazily so a million never sit in memory at once.</summary>
    public static IEnumerable<SyncEntity> Range(int start, int count, int total, int seed = 1)
    {
        var random = new Random(seed + start);
        var filler = new string('x', 1024 - 60);
        for (var i = start; i < start + count; i++)
        {
            yield return Make(i, total, seed, random, filler);
        }
    }

    private static SyncEntity Make(int i, int count, int seed, Random random, string filler)
    {
        var vector = new float[Dimension];
        for (var d = 0; d < vector.Length; d++)
        {
            vector[d] = (float)(random.NextDouble() - 0.5);
        }

        var id = "e" + i.ToString("D7", System.Globalization.CultureInfo.InvariantCulture);
        var json = Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\",\"seed\":{seed},\"text\":\"{filler}\"}}");
        return new SyncEntity(
            new EntityKey(Collection, id),
            json,
            vector,
            [
                new SyncEdge("MENTIONS", new EntityKey(Collection, "e" + ((i + 1) % count).ToString("D7", System.Globalization.CultureInfo.InvariantCulture))),
                new SyncEdge("IN_TOPIC", new EntityKey("topics", "t" + (i % 50).ToString(System.Globalization.CultureInfo.InvariantCulture))),
            ]);
    }

    public static SyncEntity[] Entities(int count, int seed = 1)
    {
        var random = new Random(seed);
        var filler = new string('x', 1024 - 60);
        var result = new SyncEntity[count];
        for (var i = 0; i < count; i++)
        {
            var vector = new float[Dimension];
            for (var d = 0; d < vector.Length; d++)
            {
                vector[d] = (float)(random.NextDouble() - 0.5);
            }

            var id = "e" + i.ToString("D7", System.Globalization.CultureInfo.InvariantCulture);
            var json = Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\",\"seed\":{seed},\"text\":\"{filler}\"}}");
            result[i] = new SyncEntity(
                new EntityKey(Collection, id),
                json,
                vector,
                [
                    new SyncEdge("MENTIONS", new EntityKey(Collection, "e" + ((i + 1) % count).ToString("D7", System.Globalization.CultureInfo.InvariantCulture))),
                    new SyncEdge("IN_TOPIC", new EntityKey("topics", "t" + (i % 50).ToString(System.Globalization.CultureInfo.InvariantCulture))),
                ]);
        }

        return result;
    }
}
