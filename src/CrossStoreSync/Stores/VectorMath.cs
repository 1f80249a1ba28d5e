namespace CrossStoreSync.Stores;

/// <summary>Exact similarity scores for stores that search by brute force.</summary>
public static class VectorMath
{
    /// <summary>Scores <paramref name="candidate"/> against <paramref name="query"/>; higher is closer.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static float Score(ReadOnlySpan<float> query, ReadOnlySpan<float> candidate, VectorDistance distance)
    {
        if (query.Length != candidate.Length)
        {
            throw new ArgumentException($"Vectors differ in dimension: {query.Length} and {candidate.Length}.", nameof(candidate));
        }

        double dot = 0, normQ = 0, normC = 0;
        for (var i = 0; i < query.Length; i++)
        {
            dot += (double)query[i] * candidate[i];
            normQ += (double)query[i] * query[i];
            normC += (double)candidate[i] * candidate[i];
        }

        return distance switch
        {
            VectorDistance.Dot => (float)dot,
            VectorDistance.Cosine => normQ == 0 || normC == 0 ? 0f : (float)(dot / Math.Sqrt(normQ * normC)),
            _ => throw new ArgumentOutOfRangeException(nameof(distance), distance, "Unknown distance."),
        };
    }
}
