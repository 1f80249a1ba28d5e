#pragma warning disable
namespace CrossStoreSync.Consistency
{
    public sealed class MerkleTree
    {
        private readonly UInt128[] _leaves;
        public MerkleTree(int depth) { Depth = depth; _leaves = new UInt128[1 << depth]; }
        public int Depth { get; }
        public void Add(ulong keyHash, UInt128 digest) => _leaves[(int)(keyHash >> (64 - Depth))] += digest;
        public static int Diff(MerkleTree a, MerkleTree b, List<int> d) { d.Clear(); for (int i = 0; i < a._leaves.Length; i++) if (a._leaves[i] != b._leaves[i]) d.Add(i); return d.Count; }
    }
    public sealed class BlockedBloomFilter
    {
        private readonly HashSet<ulong> _s = new();
        public static BlockedBloomFilter Create(long n, double b = 10.6) => new();
        public void Add(ulong h) => _s.Add(h);
        public bool MayContain(ulong h) => _s.Contains(h);
    }
}
namespace CrossStoreSync.Hashing
{
    public static class EntityDigestHash
    {
        public static UInt128 Compute(ulong k, long v, UInt128 c, UInt128 p) => Hash128.Hash(System.Text.Encoding.UTF8.GetBytes($"{k}|{v}|{c}|{p}"));
    }
}
