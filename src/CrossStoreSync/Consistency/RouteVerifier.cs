using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using CrossStoreSync.Sync;

namespace CrossStoreSync.Consistency;

/// <summary>
/// Checks a re-embedded collection, which a replica keeps under another name and through a transform: its keys and
/// buckets differ from the source's, so the bucket-aligned Merkle and Bloom comparisons do not apply. Instead it
/// streams the source collection in pages and reads the routed records by id (missing, stale, and — deep — corrupted
/// against the transform's output), then, when the target holds more records than matched, streams the target to
/// find orphans. Findings carry source keys, so a repair re-projects them through the route. Exact, constant memory,
/// about one read per entity on each side.
/// </summary>
internal static class RouteVerifier
{
    private const int PageSize = 1000;

    public static async Task<StoreConsistencyReport> CheckAsync(IDocumentStore source, ISyncStore store, CollectionRoute route, ConsistencyCheckOptions options, CancellationToken cancellationToken)
    {
        var findings = new FindingAccumulator(store.Name, options.MaxReportedFindings);
        long matched = 0;
        string? after = null;
        while (true)
        {
            var page = await source.ScanBucketsAsync(route.SourceCollection, options.Range, after, PageSize, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }

            var held = new Dictionary<string, EntityDigest>(page.Count, StringComparer.Ordinal);
            foreach (var digest in await store.ReadDigestsAsync(route.TargetCollection, page.Select(e => e.Entity.Key.Id).ToArray(), cancellationToken).ConfigureAwait(false))
            {
                held[digest.Key.Id] = digest;
            }

            findings.EntriesRead += page.Count + held.Count;
            foreach (var entry in page)
            {
                var key = entry.Entity.Key;
                if (!held.TryGetValue(key.Id, out var digest))
                {
                    findings.Add(key, InconsistencyKind.Missing, entry.Version, null);
                    continue;
                }

                matched++;
                if (digest.Version != entry.Version || digest.RecordedHash != entry.ContentHash)
                {
                    findings.Add(key, InconsistencyKind.Stale, entry.Version, digest.Version);
                }
                else if (options.Deep && !await HoldsTransformOfAsync(route, entry, digest, store.Kind, cancellationToken).ConfigureAwait(false))
                {
                    findings.Add(key, InconsistencyKind.Corrupted, entry.Version, digest.Version);
                }
                else
                {
                    findings.Consistent++;
                }
            }

            if (page.Count < PageSize)
            {
                break;
            }

            after = page[^1].Entity.Key.Id;
        }

        // Orphans live in the target's own buckets, so a partial source range cannot bound them: only full checks look.
        if (options.Range == BucketRange.All && await store.CountAsync(route.TargetCollection, cancellationToken).ConfigureAwait(false) > matched)
        {
            var batch = new List<EntityDigest>(PageSize);
            await foreach (var digest in store.ScanDigestsAsync(route.TargetCollection, BucketRange.All, cancellationToken).ConfigureAwait(false))
            {
                batch.Add(digest);
                if (batch.Count == PageSize)
                {
                    await FindOrphansAsync(source, route, batch, findings, cancellationToken).ConfigureAwait(false);
                    batch.Clear();
                }
            }

            await FindOrphansAsync(source, route, batch, findings, cancellationToken).ConfigureAwait(false);
        }

        return findings.ToReport(null);
    }

    private static async Task<bool> HoldsTransformOfAsync(CollectionRoute route, VersionedEntity entry, EntityDigest digest, StoreKind kind, CancellationToken cancellationToken)
    {
        var (routed, _) = await route.RouteAsync(EntityChange.Upsert(entry.Entity, entry.Version, entry.ContentHash), cancellationToken).ConfigureAwait(false);
        return routed?.Entity is { } expected && ProjectionHash.Compute(expected, kind) == digest.ProjectionHash;
    }

    private static async Task FindOrphansAsync(IDocumentStore source, CollectionRoute route, List<EntityDigest> batch, FindingAccumulator findings, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return;
        }

        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var digest in await source.ReadDigestsAsync(route.SourceCollection, batch.Select(d => d.Key.Id).ToArray(), cancellationToken).ConfigureAwait(false))
        {
            present.Add(digest.Key.Id);
        }

        findings.EntriesRead += batch.Count + present.Count;
        foreach (var digest in batch)
        {
            if (!present.Contains(digest.Key.Id))
            {
                findings.Add(new EntityKey(route.SourceCollection, digest.Key.Id), InconsistencyKind.Orphaned, null, digest.Version);
            }
        }
    }
}
