using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Consistency;

/// <summary>One check of one collection: the mode algorithms and the entry-level comparison they share.</summary>
internal sealed class ConsistencyRun
{
    private readonly string _collection;
    private readonly ConsistencyCheckOptions _options;
    private readonly SourceReader _source;
    private readonly IProgress<ConsistencyProgress>? _progress;

    public ConsistencyRun(IDocumentStore source, string collection, ConsistencyCheckOptions options, IProgress<ConsistencyProgress>? progress)
    {
        _collection = collection;
        _options = options;
        _source = new SourceReader(source, collection);
        _progress = progress;
    }

    /// <summary>Live source entities in the range, as counted by the run.</summary>
    public long SourceEntities { get; private set; }

    /// <summary>Full mode: Merkle trees of both sides, then entry-level comparison inside differing leaves only.</summary>
    public async Task CompareFullAsync(IReadOnlyList<(ISyncStore Store, FindingAccumulator Findings)> replicas, CancellationToken cancellationToken)
    {
        var depth = _options.MerkleDepth;
        var deep = _options.Deep;
        var sourceTrees = new MerkleTree[replicas.Count];
        for (var i = 0; i < replicas.Count; i++)
        {
            sourceTrees[i] = new MerkleTree(depth);
        }

        // One pass over the source feeds the expected tree of every replica.
        long count = 0;
        await foreach (var entry in _source.ReadAsync(_options.Range, deep, cancellationToken).ConfigureAwait(false))
        {
            count++;
            var shared = deep ? UInt128.Zero : entry.Digest(StoreKind.Document, deep: false);
            for (var i = 0; i < replicas.Count; i++)
            {
                var kind = replicas[i].Store.Kind;
                if (entry.ExpectedIn(kind) == false)
                {
                    continue;
                }

                sourceTrees[i].Add(entry.KeyHash, deep ? entry.Digest(kind, deep: true) : shared);
            }

            if ((count & 0xFFFF) == 0)
            {
                Report("source", "source", count, 0, 0);
            }
        }

        SourceEntities = count;
        var differing = new List<int>();
        for (var i = 0; i < replicas.Count; i++)
        {
            var (store, findings) = replicas[i];
            findings.EntriesRead += count;
            findings.BytesRead += count * SourceEntry.DigestBytes;
            var storeTree = new MerkleTree(depth);
            long read = 0;
            await foreach (var d in store.ScanDigestsAsync(_collection, _options.Range, cancellationToken).ConfigureAwait(false))
            {
                var keyHash = d.GetKeyHash();
                storeTree.Add(keyHash, SourceEntry.StoreDigest(d, keyHash, deep));
                read++;
            }

            findings.EntriesRead += read;
            findings.BytesRead += read * SourceEntry.DigestBytes;
            Report(store.Name, "store", findings.EntriesRead, 0, 0);

            MerkleTree.Diff(sourceTrees[i], storeTree, differing);
            findings.BucketsCompared = LeafCount(depth);
            findings.BucketsDiffering = differing.Count;
            var ranges = MergeLeaves(differing, depth);
            long done = 0;
            foreach (var range in ranges)
            {
                await CompareRangeAsync(store, findings, range, cancellationToken).ConfigureAwait(false);
                Report(store.Name, "compare", findings.EntriesRead, ++done, ranges.Count);
            }

            findings.Consistent = count - findings.NotExpected - findings.Missing - findings.Stale - findings.Corrupted;
            Report(store.Name, "done", findings.EntriesRead, ranges.Count, ranges.Count);
        }
    }

    /// <summary>
    /// Memory-bounded mode: a Bloom filter of the store's digests, the source streamed against it (candidates verified
    /// by key), then a filter of the source's digests and the store streamed against it to find orphans.
    /// </summary>
    public async Task CompareBloomAsync(IDocumentStore source, ISyncStore store, FindingAccumulator findings, CancellationToken cancellationToken)
    {
        var deep = _options.Deep;
        var filter = BlockedBloomFilter.Create(Math.Max(1, await store.CountAsync(_collection, cancellationToken).ConfigureAwait(false)), _options.BloomBitsPerKey);
        await foreach (var d in store.ScanDigestsAsync(_collection, _options.Range, cancellationToken).ConfigureAwait(false))
        {
            filter.Add((ulong)SourceEntry.StoreDigest(d, d.GetKeyHash(), deep));
            findings.EntriesRead++;
        }

        Report(store.Name, "store", findings.EntriesRead, 0, 0);
        long count = 0;
        var candidates = new List<SourceEntry>(BatchSize);

        // Probes go to the filter a block at a time: the batch lookup keeps many cache misses in flight.
        var pending = new SourceEntry[ProbeBlock];
        var probes = new ulong[ProbeBlock];
        var answers = new bool[ProbeBlock];
        var queued = 0;
        await foreach (var entry in _source.ReadAsync(_options.Range, deep, cancellationToken).ConfigureAwait(false))
        {
            count++;
            if (entry.ExpectedIn(store.Kind) == false)
            {
                findings.NotExpected++;
                continue;
            }

            pending[queued] = entry;
            probes[queued++] = (ulong)entry.Digest(store.Kind, deep);
            if (queued == ProbeBlock)
            {
                await ProbeAsync(queued).ConfigureAwait(false);
                queued = 0;
            }
        }

        await ProbeAsync(queued).ConfigureAwait(false);
        await VerifySourceCandidatesAsync(store, findings, candidates, cancellationToken).ConfigureAwait(false);

        async Task ProbeAsync(int n)
        {
            filter.MayContain(probes.AsSpan(0, n), answers);
            for (var i = 0; i < n; i++)
            {
                if (!answers[i])
                {
                    candidates.Add(pending[i]);
                    if (candidates.Count == BatchSize)
                    {
                        await VerifySourceCandidatesAsync(store, findings, candidates, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        SourceEntities = count;
        findings.EntriesRead += count;

        // The reverse pass looks only for keys the source does not hold.
        var sourceFilter = BlockedBloomFilter.Create(Math.Max(1, count), _options.BloomBitsPerKey);
        await foreach (var d in source.ScanDigestsAsync(_collection, _options.Range, cancellationToken).ConfigureAwait(false))
        {
            sourceFilter.Add(d.GetKeyHash());
        }

        var orphanCandidates = new List<EntityDigest>(BatchSize);
        await foreach (var d in store.ScanDigestsAsync(_collection, _options.Range, cancellationToken).ConfigureAwait(false))
        {
            findings.EntriesRead++;
            if (!sourceFilter.MayContain(d.GetKeyHash()))
            {
                orphanCandidates.Add(d);
                if (orphanCandidates.Count == BatchSize)
                {
                    await VerifyOrphansAsync(source, findings, orphanCandidates, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await VerifyOrphansAsync(source, findings, orphanCandidates, cancellationToken).ConfigureAwait(false);
        findings.BytesRead = findings.EntriesRead * SourceEntry.DigestBytes;
        findings.Consistent = count - findings.NotExpected - findings.Missing - findings.Stale - findings.Corrupted;
        Report(store.Name, "done", findings.EntriesRead, 0, 0);
    }

    /// <summary>Sampling mode: a random set of leaves compared entry by entry in every replica.</summary>
    public async Task CompareSampleAsync(IReadOnlyList<(ISyncStore Store, FindingAccumulator Findings)> replicas, CancellationToken cancellationToken)
    {
        var depth = _options.MerkleDepth;
        var shift = 32 - depth;
        var firstLeaf = (int)(_options.Range.First >> shift);
        var lastLeaf = (int)(_options.Range.Last >> shift);
        var leafCount = lastLeaf - firstLeaf + 1;
        var take = Math.Clamp((int)Math.Ceiling(leafCount * _options.SampleFraction), 1, leafCount);
        var random = _options.SampleSeed is { } seed ? new Random(seed) : new Random();
        var chosen = new HashSet<int>();
        while (chosen.Count < take)
        {
            chosen.Add(firstLeaf + random.Next(leafCount));
        }

        var leaves = chosen.Order().ToList();
        var ranges = MergeLeaves(leaves, depth);
        foreach (var (store, findings) in replicas)
        {
            findings.BucketsCompared = take;
            long done = 0;
            foreach (var range in ranges)
            {
                await CompareRangeAsync(store, findings, range, cancellationToken).ConfigureAwait(false);
                Report(store.Name, "compare", findings.EntriesRead, ++done, ranges.Count);
            }
        }
    }

    /// <summary>Compares both sides entry by entry inside <paramref name="range"/>.</summary>
    public async Task CompareRangeAsync(ISyncStore store, FindingAccumulator findings, BucketRange range, CancellationToken cancellationToken)
    {
        var deep = _options.Deep;
        var expected = new Dictionary<string, SourceEntry>(StringComparer.Ordinal);
        await foreach (var entry in _source.ReadAsync(range, deep, cancellationToken).ConfigureAwait(false))
        {
            expected[entry.Key.Id] = entry;
        }

        var held = new Dictionary<string, EntityDigest>(StringComparer.Ordinal);
        await foreach (var d in store.ScanDigestsAsync(_collection, range, cancellationToken).ConfigureAwait(false))
        {
            held[d.Key.Id] = d;
        }

        findings.EntriesRead += expected.Count + held.Count;
        findings.BytesRead += (expected.Count + held.Count) * (long)SourceEntry.DigestBytes;
        var inconsistentBefore = findings.Total;
        foreach (var (id, entry) in expected)
        {
            if (!held.TryGetValue(id, out var digest))
            {
                if (!await IsExpectedAsync(entry, store.Kind, cancellationToken).ConfigureAwait(false))
                {
                    findings.NotExpected++;
                    continue;
                }

                findings.Add(entry.Key, InconsistencyKind.Missing, entry.Version, null);
            }
            else
            {
                Classify(store, findings, entry, digest);
            }
        }

        foreach (var (id, digest) in held)
        {
            if (!expected.ContainsKey(id))
            {
                findings.Add(digest.Key, InconsistencyKind.Orphaned, null, digest.Version);
            }
        }

        if (_options.Mode == ConsistencyCheckMode.Sampling)
        {
            findings.Consistent += expected.Count - (findings.Total - inconsistentBefore);
            if (findings.Total > inconsistentBefore)
            {
                findings.BucketsDiffering++;
            }
        }
    }

    private const int BatchSize = 500;
    private const int ProbeBlock = 4096;

    private static int LeafCount(int depth) => 1 << depth;

    private void Classify(ISyncStore store, FindingAccumulator findings, in SourceEntry entry, in EntityDigest digest)
    {
        if (digest.Version != entry.Version || digest.RecordedHash != entry.ContentHash)
        {
            findings.Add(entry.Key, InconsistencyKind.Stale, entry.Version, digest.Version);
        }
        else if (_options.Deep && digest.ProjectionHash != ProjectionHash.Compute(entry.Entity!, store.Kind))
        {
            findings.Add(entry.Key, InconsistencyKind.Corrupted, entry.Version, digest.Version);
        }
    }

    private async ValueTask<bool> IsExpectedAsync(SourceEntry entry, StoreKind kind, CancellationToken cancellationToken)
    {
        if (entry.ExpectedIn(kind) is { } known)
        {
            return known;
        }

        // A vector store holds only entities with vectors; digests do not say, so look at the entity itself.
        var current = await _source.ReadEntityAsync(entry.Key, cancellationToken).ConfigureAwait(false);
        return current?.Entity.HasVector ?? false;
    }

    private async Task VerifySourceCandidatesAsync(ISyncStore store, FindingAccumulator findings, List<SourceEntry> candidates, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0)
        {
            return;
        }

        var held = await store.ReadDigestsAsync(_collection, candidates.Select(c => c.Key.Id).ToArray(), cancellationToken).ConfigureAwait(false);
        var byId = held.ToDictionary(d => d.Key.Id, StringComparer.Ordinal);
        findings.EntriesRead += held.Count;
        foreach (var entry in candidates)
        {
            if (!byId.TryGetValue(entry.Key.Id, out var digest))
            {
                if (await IsExpectedAsync(entry, store.Kind, cancellationToken).ConfigureAwait(false))
                {
                    findings.Add(entry.Key, InconsistencyKind.Missing, entry.Version, null);
                }
                else
                {
                    findings.NotExpected++;
                }
            }
            else
            {
                Classify(store, findings, entry, digest);
            }
        }

        candidates.Clear();
    }

    private async Task VerifyOrphansAsync(IDocumentStore source, FindingAccumulator findings, List<EntityDigest> candidates, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0)
        {
            return;
        }

        var present = await source.ReadDigestsAsync(_collection, candidates.Select(c => c.Key.Id).ToArray(), cancellationToken).ConfigureAwait(false);
        var ids = present.Select(d => d.Key.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var digest in candidates)
        {
            if (!ids.Contains(digest.Key.Id))
            {
                findings.Add(digest.Key, InconsistencyKind.Orphaned, null, digest.Version);
            }
        }

        candidates.Clear();
    }

    /// <summary>Merges ascending leaf indices into contiguous bucket ranges, clipped to the checked range.</summary>
    private List<BucketRange> MergeLeaves(List<int> leaves, int depth)
    {
        var ranges = new List<BucketRange>();
        var i = 0;
        while (i < leaves.Count)
        {
            var j = i;
            while (j + 1 < leaves.Count && leaves[j + 1] == leaves[j] + 1)
            {
                j++;
            }

            var first = BucketRange.ForPrefix(depth, (uint)leaves[i]).First;
            var last = BucketRange.ForPrefix(depth, (uint)leaves[j]).Last;
            first = Math.Max(first, _options.Range.First);
            last = Math.Min(last, _options.Range.Last);
            if (first <= last)
            {
                ranges.Add(new BucketRange(first, last));
            }

            i = j + 1;
        }

        return ranges;
    }

    private void Report(string store, string phase, long entries, long done, long total) =>
        _progress?.Report(new ConsistencyProgress(store, phase, entries, done, total));
}
