using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Consistency;

public sealed class MerkleTreeTests
{
    private static readonly Gen<ulong> AnyWord =
        Gen.Choose(int.MinValue, int.MaxValue).Zip(Gen.Choose(int.MinValue, int.MaxValue), (hi, lo) => ((ulong)(uint)hi << 32) | (uint)lo);

    // Half the keys crowd into 16 leaf prefixes so that leaves hold several entries, half spread over the key space.
    private static readonly Gen<ulong> KeyGen = Gen.OneOf(
        AnyWord,
        Gen.Choose(0, 15).Zip(AnyWord, (prefix, rest) => ((ulong)prefix << 54) | (rest >> 10)));

    private static readonly Gen<EntityState> StateGen =
        from version in Gen.Choose(1, 1_000)
        from content in AnyWord
        from projection in Gen.Frequency((4, Gen.Constant(0UL)), (1, AnyWord))
        select new EntityState(version, content, content ^ projection);

    private static readonly Gen<Entry> EntryGen = KeyGen.Zip(StateGen, (key, state) => new Entry(key, state));

    private static readonly Gen<int> DepthGen = Gen.Elements(10, 11, 12, 14);

    // Distinct keys: a key set, as one store holds it.
    private static readonly Gen<Entry[]> EntrySetGen =
        Gen.ArrayOf(EntryGen).Resize(300).Select(entries => entries.DistinctBy(e => e.Key).ToArray());

    private enum Change
    {
        Keep,
        NewVersion,
        CorruptProjection,
        Drop,
        StateOfNeighbour,
    }

    [Fact]
    public void Diff_then_comparing_entries_in_differing_leaves_finds_exactly_the_differing_keys()
    {
        var changeGen = Gen.Frequency(
            (10, Gen.Constant(Change.Keep)),
            (2, Gen.Constant(Change.NewVersion)),
            (1, Gen.Constant(Change.CorruptProjection)),
            (2, Gen.Constant(Change.Drop)),
            (1, Gen.Constant(Change.StateOfNeighbour)));
        var cases =
            from depth in DepthGen
            from left in EntrySetGen
            from changes in Gen.ArrayOf(changeGen, left.Length)
            from newStates in Gen.ArrayOf(StateGen, left.Length)
            from extra in Gen.ArrayOf(EntryGen).Resize(30)
            select (depth, left, Right: Derive(left, changes, newStates, extra));

        Prop.ForAll(Arb.From(cases), c =>
        {
            var left = c.left.ToDictionary(e => e.Key, e => e.State);
            var right = c.Right.ToDictionary(e => e.Key, e => e.State);
            var expected = new HashSet<ulong>();
            foreach (var key in left.Keys.Union(right.Keys))
            {
                var inLeft = left.TryGetValue(key, out var l);
                var inRight = right.TryGetValue(key, out var r);
                if (inLeft != inRight || l != r)
                {
                    expected.Add(key);
                }
            }

            var leftTree = Build(c.depth, c.left);
            var rightTree = Build(c.depth, c.Right);
            var leaves = new List<int>();
            MerkleTree.Diff(leftTree, rightTree, leaves);

            var found = CompareLeaves(c.depth, leaves, c.left, c.Right);
            Assert.Equal(expected.Order(), found.Order());
            Assert.Equal(expected.Select(k => MerkleTree.LeafIndex(k, c.depth)).Distinct().Order(), leaves);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Trees_built_from_the_same_entries_in_any_order_are_equal_in_every_node()
    {
        var cases =
            from depth in DepthGen
            from entries in Gen.ArrayOf(EntryGen).Resize(300)
            from shuffled in Gen.Shuffle(entries)
            select (depth, entries, shuffled);

        Prop.ForAll(Arb.From(cases), c =>
        {
            var oneByOne = new MerkleTree(c.depth);
            foreach (var e in c.entries)
            {
                oneByOne.Add(e.Key, e.Digest);
            }

            var bulk = new MerkleTree(c.depth);
            bulk.AddRange(c.shuffled.Select(e => e.Key).ToArray(), c.shuffled.Select(e => e.Digest).ToArray());

            AssertEqualInEveryNode(oneByOne, bulk);
        }).QuickCheckThrowOnFailure();
    }

    // From depth 20, AddRange takes its grouped bulk path for batches of at least 2^20 entries; it stages chunks of
    // 838,860 entries in the internal nodes, so these sizes cover the direct path, a partial last chunk, exact chunks
    // and several chunks.
    [Theory]
    [InlineData(1_048_575, 1)]
    [InlineData(1_048_576, 2)]
    [InlineData(1_677_720, 3)]
    [InlineData(2_200_000, 4)]
    public void Bulk_add_of_a_large_batch_equals_adding_one_by_one(int count, int seed)
    {
        const int Depth = 20;
        var random = new Random(seed);
        var keys = new ulong[count];
        var digests = new UInt128[count];
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(keys.AsSpan()));
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(digests.AsSpan()));

        // Both trees start non-empty with fresh internal nodes, which the bulk path overwrites as scratch.
        var bulk = new MerkleTree(Depth);
        var oneByOne = new MerkleTree(Depth);
        bulk.Add(keys[0], 42);
        oneByOne.Add(keys[0], 42);
        _ = bulk.Root;

        bulk.AddRange(keys, digests);
        for (var i = 0; i < count; i++)
        {
            oneByOne.Add(keys[i], digests[i]);
        }

        AssertEqualInEveryNode(oneByOne, bulk);
        Assert.Equal(count + 1, bulk.EntryCount);
    }

    [Fact]
    public void Adding_and_removing_entries_one_by_one_equals_a_rebuild_from_the_final_set()
    {
        // Each step: 0 adds a new entry, 1 removes one, 2 replaces one's state, 3 reads the root (refreshing nodes).
        var steps = Gen.ArrayOf(Gen.Choose(0, 3).Zip(EntryGen.Zip(Gen.Choose(0, int.MaxValue)))).Resize(200);
        var cases = DepthGen.Zip(steps);

        Prop.ForAll(Arb.From(cases), c =>
        {
            var (depth, script) = c;
            var tree = new MerkleTree(depth);
            var model = new Dictionary<ulong, EntityState>();
            var keys = new List<ulong>();
            foreach (var (op, (entry, pick)) in script)
            {
                if (op == 0 || keys.Count == 0)
                {
                    if (model.TryAdd(entry.Key, entry.State))
                    {
                        keys.Add(entry.Key);
                        tree.Add(entry.Key, entry.Digest);
                    }

                    continue;
                }

                var index = pick % keys.Count;
                var key = keys[index];
                var old = new Entry(key, model[key]);
                switch (op)
                {
                    case 1:
                        tree.Remove(key, old.Digest);
                        model.Remove(key);
                        keys[index] = keys[^1];
                        keys.RemoveAt(keys.Count - 1);
                        break;
                    case 2:
                        tree.Remove(key, old.Digest);
                        model[key] = entry.State;
                        tree.Add(key, new Entry(key, entry.State).Digest);
                        break;
                    default:
                        _ = tree.Root;
                        break;
                }
            }

            var rebuilt = Build(depth, model.Select(kv => new Entry(kv.Key, kv.Value)).ToArray());
            AssertEqualInEveryNode(rebuilt, tree);
            Assert.Equal(model.Count, tree.EntryCount);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Diff_of_equal_trees_is_empty_and_clears_the_destination()
    {
        Prop.ForAll(Arb.From(DepthGen.Zip(EntrySetGen)), c =>
        {
            var (depth, entries) = c;
            var destination = new List<int> { 7, 8, 9 };
            Assert.Equal(0, MerkleTree.Diff(Build(depth, entries), Build(depth, entries.Reverse().ToArray()), destination));
            Assert.Empty(destination);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Diff_is_symmetric_and_ascending()
    {
        var cases =
            from depth in DepthGen
            from a in EntrySetGen
            from b in EntrySetGen
            select (depth, a, b);

        Prop.ForAll(Arb.From(cases), c =>
        {
            var (depth, a, b) = c;
            var left = Build(depth, a);
            var right = Build(depth, b);
            var forward = new List<int>();
            var backward = new List<int>();

            var count = MerkleTree.Diff(left, right, forward);
            MerkleTree.Diff(right, left, backward);

            Assert.Equal(forward.Count, count);
            Assert.Equal(forward, backward);
            for (var i = 1; i < forward.Count; i++)
            {
                Assert.True(forward[i - 1] < forward[i]);
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Root_is_the_wrapping_sum_of_all_digests_and_leaves_sum_their_entries()
    {
        Prop.ForAll(Arb.From(DepthGen.Zip(EntrySetGen)), c =>
        {
            var (depth, entries) = c;
            var tree = Build(depth, entries);
            var sum = UInt128.Zero;
            var leafSums = new Dictionary<int, UInt128>();
            foreach (var e in entries)
            {
                sum += e.Digest;
                var leaf = MerkleTree.LeafIndex(e.Key, depth);
                leafSums[leaf] = leafSums.GetValueOrDefault(leaf) + e.Digest;
            }

            Assert.Equal(sum, tree.Root);
            Assert.Equal(entries.Length, tree.EntryCount);
            foreach (var (leaf, leafSum) in leafSums)
            {
                Assert.Equal(leafSum, tree.GetLeaf(leaf));
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Moving_a_state_to_another_key_in_the_same_leaf_is_detected()
    {
        // Two keys in leaf 0 trade their states: the leaf sum of raw states would not change, the digests bind the key.
        var first = new EntityState(1, 0xAAAAUL, 0xAAAAUL);
        var second = new EntityState(2, 0xBBBBUL, 0xBBBBUL);
        Entry[] before = [new(1, first), new(2, second)];
        Entry[] after = [new(1, second), new(2, first)];
        var leaves = new List<int>();

        Assert.Equal(1, MerkleTree.Diff(Build(10, before), Build(10, after), leaves));
        Assert.Equal(new[] { 0 }, leaves);
    }

    [Fact]
    public void Leaf_index_is_the_top_bits_of_the_key_hash_and_of_the_store_bucket()
    {
        Prop.ForAll(Arb.From(KeyGen.Zip(Gen.Choose(MerkleTree.MinDepth, MerkleTree.MaxDepth))), c =>
        {
            var (key, depth) = c;
            var bucket = (uint)(key >> 32);
            var leaf = MerkleTree.LeafIndex(key, depth);

            Assert.Equal((int)(key >> (64 - depth)), leaf);
            Assert.Equal(leaf, MerkleTree.LeafIndexOfBucket(bucket, depth));
            if (depth <= 14)
            {
                Assert.True(new MerkleTree(depth).LeafBucketRange(leaf).Contains(bucket));
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Leaf_bucket_ranges_tile_the_32_bit_bucket_space()
    {
        var tree = new MerkleTree(10);
        Assert.Equal(0u, tree.LeafBucketRange(0).First);
        Assert.Equal(uint.MaxValue, tree.LeafBucketRange(tree.LeafCount - 1).Last);
        for (var i = 1; i < tree.LeafCount; i++)
        {
            Assert.Equal(tree.LeafBucketRange(i - 1).Last + 1, tree.LeafBucketRange(i).First);
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(9)]
    [InlineData(25)]
    [InlineData(64)]
    public void Depth_outside_10_to_24_is_rejected_with_its_value(int depth)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new MerkleTree(depth));
        Assert.Equal("depth", ex.ParamName);
        Assert.Equal(depth, ex.ActualValue);
        Assert.Contains($"got {depth}", ex.Message, StringComparison.Ordinal);

        var staticEx = Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.LeafIndex(0, depth));
        Assert.Equal("depth", staticEx.ParamName);
    }

    [Fact]
    public void Smallest_and_largest_depths_are_accepted()
    {
        Assert.Equal(1024, new MerkleTree(MerkleTree.MinDepth).LeafCount);
        Assert.Equal((1 << 24) - 1, MerkleTree.LeafIndex(ulong.MaxValue, MerkleTree.MaxDepth));
    }

    [Fact]
    public void Diff_of_trees_of_different_depth_names_both_depths()
    {
        var ex = Assert.Throws<ArgumentException>(() => MerkleTree.Diff(new MerkleTree(10), new MerkleTree(11), []));
        Assert.Contains("depth 10", ex.Message, StringComparison.Ordinal);
        Assert.Contains("depth 11", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Add_range_with_spans_of_different_length_is_rejected()
    {
        var tree = new MerkleTree(10);
        Assert.Throws<ArgumentException>(() => tree.AddRange(new ulong[2], new UInt128[1]));
        Assert.Equal(0, tree.EntryCount);
    }

    [Fact]
    public void Leaf_and_node_indices_are_range_checked()
    {
        var tree = new MerkleTree(10);
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.GetLeaf(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.GetLeaf(1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.LeafBucketRange(1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.GetNode(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.GetNode(2048));
    }

    [Fact]
    public void Clear_and_removing_everything_return_to_the_empty_tree()
    {
        var entries = new Entry[] { new(1, new EntityState(1, 2UL, 3UL)), new(ulong.MaxValue, new EntityState(4, 5UL, 6UL)) };
        var tree = Build(12, entries);
        Assert.NotEqual(UInt128.Zero, tree.Root);

        foreach (var e in entries)
        {
            tree.Remove(e.Key, e.Digest);
        }

        AssertEqualInEveryNode(new MerkleTree(12), tree);
        Assert.Equal(0, tree.EntryCount);

        tree = Build(12, entries);
        tree.Clear();
        AssertEqualInEveryNode(new MerkleTree(12), tree);
        Assert.Equal(0, tree.EntryCount);
    }

    [Fact]
    public void A_depth_20_tree_takes_under_4_bytes_per_entity_at_10_million_entities()
    {
        var tree = new MerkleTree(20);
        Assert.Equal(32L << 20, tree.MemoryBytes);
        Assert.True(tree.MemoryBytes / 10_000_000.0 <= 4.0);
    }

    private static Entry[] Derive(Entry[] left, Change[] changes, EntityState[] newStates, Entry[] extra)
    {
        var right = new Dictionary<ulong, EntityState>();
        for (var i = 0; i < left.Length; i++)
        {
            var state = left[i].State;
            switch (changes[i])
            {
                case Change.Keep:
                    right[left[i].Key] = state;
                    break;
                case Change.NewVersion:
                    right[left[i].Key] = newStates[i];
                    break;
                case Change.CorruptProjection:
                    right[left[i].Key] = state with { Projection = state.Projection ^ UInt128.One };
                    break;
                case Change.StateOfNeighbour:
                    right[left[i].Key] = left[(i + 1) % left.Length].State;
                    break;
                default:
                    break;
            }
        }

        foreach (var e in extra)
        {
            right.TryAdd(e.Key, e.State);
        }

        return right.Select(kv => new Entry(kv.Key, kv.Value)).ToArray();
    }

    // The entry-level step after a Merkle diff: fetch both sides' entries of each differing leaf and compare them.
    private static HashSet<ulong> CompareLeaves(int depth, List<int> leaves, Entry[] left, Entry[] right)
    {
        var leftByLeaf = left.ToLookup(e => MerkleTree.LeafIndex(e.Key, depth));
        var rightByLeaf = right.ToLookup(e => MerkleTree.LeafIndex(e.Key, depth));
        var differing = new HashSet<ulong>();
        foreach (var leaf in leaves)
        {
            var l = leftByLeaf[leaf].ToDictionary(e => e.Key, e => e.State);
            var r = rightByLeaf[leaf].ToDictionary(e => e.Key, e => e.State);
            foreach (var (key, state) in l)
            {
                if (!r.TryGetValue(key, out var other) || other != state)
                {
                    differing.Add(key);
                }
            }

            foreach (var key in r.Keys)
            {
                if (!l.ContainsKey(key))
                {
                    differing.Add(key);
                }
            }
        }

        return differing;
    }

    private static MerkleTree Build(int depth, Entry[] entries)
    {
        var tree = new MerkleTree(depth);
        foreach (var e in entries)
        {
            tree.Add(e.Key, e.Digest);
        }

        return tree;
    }

    private static void AssertEqualInEveryNode(MerkleTree expected, MerkleTree actual)
    {
        Assert.Equal(expected.Depth, actual.Depth);
        for (var node = 1; node < 2 * expected.LeafCount; node++)
        {
            if (expected.GetNode(node) != actual.GetNode(node))
            {
                Assert.Fail($"Node {node} differs: {expected.GetNode(node):X} != {actual.GetNode(node):X}.");
            }
        }
    }

    private readonly record struct EntityState(long Version, UInt128 Content, UInt128 Projection);

    private readonly record struct Entry(ulong Key, EntityState State)
    {
        public UInt128 Digest => EntityDigestHash.Compute(Key, State.Version, State.Content, State.Projection);
    }
}
