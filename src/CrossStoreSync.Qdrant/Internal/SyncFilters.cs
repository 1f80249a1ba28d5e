using CrossStoreSync.Model;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>The Qdrant filters the store sends, all over the <c>_sync</c> payload (indexed at start-up).</summary>
internal static class SyncFilters
{
    /// <summary>Points that hold a live entity (not tombstones, not entities without a vector).</summary>
    public static Filter Live() => new() { Must = { Conditions.Match(SyncPayload.LivePath, true) } };

    /// <summary>Live points whose bucket lies in <paramref name="range"/>; bucket values are below 2^32, exact as Qdrant's double range bounds.</summary>
    public static Filter LiveInBuckets(BucketRange range) => new()
    {
        Must =
        {
            Conditions.Range(SyncPayload.BucketPath, new global::Qdrant.Client.Grpc.Range { Gte = range.First, Lte = range.Last }),
            Conditions.Match(SyncPayload.LivePath, true),
        },
    };

    /// <summary>Tombstones whose version is below <paramref name="below"/>, optionally only among <paramref name="ids"/>.</summary>
    public static Filter TombstonesBelow(long below, IReadOnlyList<PointId>? ids = null)
    {
        var filter = new Filter
        {
            Must =
            {
                Conditions.Match(SyncPayload.DeletedPath, true),
                Conditions.Range(SyncPayload.VersionPath, new global::Qdrant.Client.Grpc.Range { Lt = below }),
            },
        };
        if (ids is not null)
        {
            var hasId = new HasIdCondition();
            hasId.HasId.AddRange(ids);
            filter.Must.Add(new Condition { HasId = hasId });
        }

        return filter;
    }

    /// <summary>Points still tagged with <paramref name="origin"/>.</summary>
    public static Filter Origin(string origin) => new() { Must = { Conditions.MatchKeyword(SyncPayload.OriginPath, origin) } };

    /// <summary>
    /// The version guard of one upsert (Qdrant's <c>update_filter</c>, PROTOCOLS.md §1.4): one branch per point, which
    /// lets an existing point be replaced only while it still holds exactly the version read before the write (or none
    /// at all); points that do not exist yet are inserted regardless. An exact integer match, never a range: Qdrant
    /// compares range bounds as doubles, which cannot tell 63-bit versions apart.
    /// </summary>
    public static Filter VersionGuard(IReadOnlyList<(PointId Id, long? StoredVersion)> points)
    {
        var filter = new Filter();
        foreach (var (id, version) in points)
        {
            var branch = new Filter { Must = { new Condition { HasId = new HasIdCondition { HasId = { id } } } } };
            branch.Must.Add(version is { } v ? Conditions.Match(SyncPayload.VersionPath, v) : Conditions.IsEmpty(SyncPayload.VersionPath));
            filter.Should.Add(new Condition { Filter = branch });
        }

        return filter;
    }
}
