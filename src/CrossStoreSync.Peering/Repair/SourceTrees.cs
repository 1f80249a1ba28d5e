using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Peering.Repair;

/// <summary>
/// Merkle trees over a node's source of truth for cross-node comparison: every state, tombstones included (a delete on
/// one node and an older live state on another must differ), digested from (key, version, content hash, deleted).
/// </summary>
internal static class SourceTrees
{
    private const int PageSize = 4096;

    public static UInt128 Digest(ulong keyHash, in StateDigest state) =>
        EntityDigestHash.Compute(keyHash, state.Version.Value, state.ContentHash, state.Deleted ? UInt128.One : UInt128.Zero);

    /// <summary>Builds the tree of a collection by one streaming pass over its states.</summary>
    public static async Task<MerkleTree> BuildAsync(IReplicationLog log, string collection, int depth, CancellationToken cancellationToken)
    {
        var tree = new MerkleTree(depth);
        var keyHashes = new ulong[PageSize];
        var digests = new UInt128[PageSize];
        string? after = null;
        while (true)
        {
            var page = await log.ScanStateDigestsAsync(collection, BucketRange.All, after, PageSize, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < page.Count; i++)
            {
                keyHashes[i] = KeyHash.Compute(collection, page[i].Id);
                digests[i] = Digest(keyHashes[i], page[i]);
            }

            tree.AddRange(keyHashes.AsSpan(0, page.Count), digests.AsSpan(0, page.Count));
            if (page.Count < PageSize)
            {
                return tree;
            }

            after = page[^1].Id;
        }
    }

    /// <summary>The values of one level of a tree (its leaves when <paramref name="depth"/> is the tree's depth).</summary>
    public static UInt128[] Level(MerkleTree tree, int depth)
    {
        var values = new UInt128[1 << depth];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = tree.GetNode((1 << depth) + i); // heap order: level d starts at 2^d
        }

        return values;
    }

    /// <summary>Reads the state digests of the given leaves (ascending), merging neighbouring leaves into one range scan.</summary>
    public static async Task<List<StateDigest>> ReadLeavesAsync(IReplicationLog log, string collection, int depth, IReadOnlyList<int> leaves, CancellationToken cancellationToken)
    {
        var result = new List<StateDigest>();
        for (var i = 0; i < leaves.Count;)
        {
            var first = leaves[i];
            var last = first;
            while (i + 1 < leaves.Count && leaves[i + 1] == last + 1)
            {
                last = leaves[++i];
            }

            i++;
            var range = new BucketRange(BucketRange.ForPrefix(depth, (uint)first).First, BucketRange.ForPrefix(depth, (uint)last).Last);
            string? after = null;
            while (true)
            {
                var page = await log.ScanStateDigestsAsync(collection, range, after, PageSize, cancellationToken).ConfigureAwait(false);
                result.AddRange(page);
                if (page.Count < PageSize)
                {
                    break;
                }

                after = page[^1].Id;
            }
        }

        return result;
    }
}
