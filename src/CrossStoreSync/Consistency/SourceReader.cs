using System.Runtime.CompilerServices;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Consistency;

/// <summary>Streams what the source holds in a bucket range: digests only, or whole entities for deep checks.</summary>
internal sealed class SourceReader(IDocumentStore source, string collection)
{
    private const int PageSize = 1000;

    // Below this span of buckets, reading digests by range and entities by key beats paging the whole collection.
    private const long NarrowRange = 1L << 26;

    public async IAsyncEnumerable<SourceEntry> ReadAsync(BucketRange range, bool withEntities, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!withEntities)
        {
            await foreach (var d in source.ScanDigestsAsync(collection, range, cancellationToken).ConfigureAwait(false))
            {
                yield return new SourceEntry(d.Key, d.GetKeyHash(), d.Version, d.RecordedHash, null);
            }

            yield break;
        }

        if ((long)range.Last - range.First < NarrowRange)
        {
            await foreach (var d in source.ScanDigestsAsync(collection, range, cancellationToken).ConfigureAwait(false))
            {
                var current = await source.ReadAsync(d.Key, cancellationToken).ConfigureAwait(false);
                if (current is not null)
                {
                    yield return new SourceEntry(d.Key, KeyHash.Compute(d.Key), current.Version, current.ContentHash, current.Entity);
                }
            }

            yield break;
        }

        string? after = null;
        while (true)
        {
            var page = await source.ScanAsync(collection, after, PageSize, cancellationToken).ConfigureAwait(false);
            foreach (var e in page)
            {
                var keyHash = KeyHash.Compute(e.Entity.Key);
                if (range.Contains((uint)(keyHash >> 32)))
                {
                    yield return new SourceEntry(e.Entity.Key, keyHash, e.Version, e.ContentHash, e.Entity);
                }
            }

            if (page.Count < PageSize)
            {
                yield break;
            }

            after = page[^1].Entity.Key.Id;
        }
    }

    public async ValueTask<VersionedEntity?> ReadEntityAsync(EntityKey key, CancellationToken cancellationToken) =>
        await source.ReadAsync(key, cancellationToken).ConfigureAwait(false);
}
