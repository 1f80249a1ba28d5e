using CrossStoreSync.Model;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Replication;

public sealed class VersionVectorTests
{
    // Few nodes and few clock values, so shared nodes and equal entries are common.
    private static readonly Gen<HlcTimestamp> Stamp =
        from ms in Gen.Choose(1, 6)
        from node in Gen.Choose(0, 4)
        select new HlcTimestamp(ms, 0, node);

    private static readonly Gen<VersionVector> Vector =
        Gen.ListOf(Stamp).Select(stamps => stamps.Aggregate(VersionVector.Empty, (v, s) => v.With(s)));

    [Fact]
    public void Merge_is_commutative_associative_and_idempotent()
    {
        Prop.ForAll(Arb.From(Vector.Three()), t =>
        {
            var (a, b, c) = t;
            Assert.Equal(a.Merge(b), b.Merge(a));
            Assert.Equal(a.Merge(b).Merge(c), a.Merge(b.Merge(c)));
            Assert.Equal(a, a.Merge(a));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Merge_dominates_both_and_is_the_least_such_history()
    {
        Prop.ForAll(Arb.From(Vector.Two()), t =>
        {
            var (a, b) = t;
            var m = a.Merge(b);
            Assert.True(m.Dominates(a) && m.Dominates(b));
            foreach (var entry in m.Entries)
            {
                var stamp = new HlcTimestamp(entry);
                Assert.True(a.Covers(stamp) || b.Covers(stamp), $"{stamp} in {m} comes from neither {a} nor {b}");
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Encodings_round_trip()
    {
        Prop.ForAll(Arb.From(Vector), v =>
        {
            Assert.Equal(v, VersionVector.ParseJson(v.ToJson()));
            var bytes = new byte[v.EncodedLength];
            Assert.Equal(bytes.Length, v.WriteTo(bytes));
            Assert.Equal(bytes.Length, VersionVector.Read(bytes, out var read));
            Assert.Equal(v, read);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Compare_uses_the_other_states_own_version()
    {
        var a1 = new HlcTimestamp(10, 0, 1);
        var b1 = new HlcTimestamp(11, 0, 2);
        var ha = VersionVector.Of(a1);
        var hb = VersionVector.Of(b1);
        Assert.Equal(CausalOrder.Concurrent, VersionVector.Compare(a1, ha, b1, hb));

        // b2 was written on node 2 after it saw a1: it supersedes a1, although a1's history never saw b1.
        var b2 = new HlcTimestamp(12, 0, 2);
        var hb2 = ha.With(b2);
        Assert.Equal(CausalOrder.Supersedes, VersionVector.Compare(b2, hb2, a1, ha));
        Assert.Equal(CausalOrder.SupersededBy, VersionVector.Compare(a1, ha, b2, hb2));
        Assert.Equal(CausalOrder.Same, VersionVector.Compare(b2, hb2, b2, hb2.Merge(hb)));
    }

    [Fact]
    public void Malformed_encodings_are_refused_with_the_reason()
    {
        Assert.Contains("belongs to node 3", Assert.Throws<FormatException>(() => VersionVector.ParseJson("""{"1":""" + new HlcTimestamp(5, 0, 3).Value + "}")).Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => VersionVector.ParseJson("[1,2]"));
        Assert.Throws<FormatException>(() => VersionVector.ParseJson("""{"x":5}"""));
        Assert.Throws<FormatException>(() => VersionVector.Read([2, 0, 1], out _));
        var unsorted = new byte[2 + 16];
        unsorted[0] = 2;
        BitConverter.TryWriteBytes(unsorted.AsSpan(2), new HlcTimestamp(5, 0, 3).Value);
        BitConverter.TryWriteBytes(unsorted.AsSpan(10), new HlcTimestamp(5, 0, 1).Value);
        Assert.Throws<FormatException>(() => VersionVector.Read(unsorted, out _));
    }
}
