using CrossStoreSync.Model;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Model;

public sealed class HlcTimestampTests
{
    private const long MaxMs = (1L << 43) - 1;

    // 31 + 12 random bits: every value in 0..2^43-1.
    private static readonly Gen<long> AnyMs = Gen.Choose(0, int.MaxValue).Zip(Gen.Choose(0, 4095), (hi, lo) => ((long)hi << 12) | (long)lo);

    // Small ranges mixed with full ranges so that ties in the leading parts (where the lower parts decide) are common.
    private static readonly Gen<(long Ms, int Counter, int Node)> PartsGen =
        from ms in Gen.OneOf(Gen.Choose(0, 3).Select(x => (long)x), AnyMs)
        from counter in Gen.OneOf(Gen.Choose(0, 3), Gen.Choose(0, 4095))
        from node in Gen.OneOf(Gen.Choose(0, 3), Gen.Choose(0, 255))
        select (ms, counter, node);

    [Fact]
    public void Parts_survive_packing()
    {
        Prop.ForAll(Arb.From(PartsGen), p =>
        {
            var t = new HlcTimestamp(p.Ms, p.Counter, p.Node);
            Assert.Equal((p.Ms, p.Counter, p.Node), (t.WallTimeMs, t.Counter, t.NodeId));
            Assert.True(t.Value >= 0);
            Assert.Equal(t, new HlcTimestamp(t.Value));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Order_of_packed_values_is_the_lexicographic_order_of_ms_counter_node()
    {
        Prop.ForAll(Arb.From(PartsGen.Two()), pair =>
        {
            var (a, b) = pair;
            var expected = Math.Sign(a.Ms != b.Ms ? a.Ms.CompareTo(b.Ms) : a.Counter != b.Counter ? a.Counter.CompareTo(b.Counter) : a.Node.CompareTo(b.Node));
            var ta = new HlcTimestamp(a.Ms, a.Counter, a.Node);
            var tb = new HlcTimestamp(b.Ms, b.Counter, b.Node);

            Assert.Equal(expected, Math.Sign(ta.CompareTo(tb)));
            Assert.Equal(expected, Math.Sign(ta.Value.CompareTo(tb.Value)));
            Assert.Equal(expected < 0, ta < tb);
            Assert.Equal(expected > 0, ta > tb);
            Assert.Equal(expected <= 0, ta <= tb);
            Assert.Equal(expected >= 0, ta >= tb);
            Assert.Equal(expected == 0, ta == tb);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Largest_timestamp_is_the_largest_positive_long()
    {
        var max = new HlcTimestamp(MaxMs, 4095, HlcTimestamp.MaxNodeId);
        Assert.Equal(long.MaxValue, max.Value);
        Assert.True(HlcTimestamp.Zero < new HlcTimestamp(0, 0, 1));
    }

    [Theory]
    [InlineData(-1L, 0, 0, "wallTimeMs")]
    [InlineData(MaxMs + 1, 0, 0, "wallTimeMs")]
    [InlineData(0L, -1, 0, "counter")]
    [InlineData(0L, 4096, 0, "counter")]
    [InlineData(0L, 0, -1, "nodeId")]
    [InlineData(0L, 0, 256, "nodeId")]
    public void Out_of_range_part_is_rejected_naming_it(long ms, int counter, int node, string param)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new HlcTimestamp(ms, counter, node));
        Assert.Equal(param, ex.ParamName);
    }

    [Fact]
    public void Negative_packed_value_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HlcTimestamp(-1));
    }

    [Fact]
    public void String_form_is_ms_dot_counter_at_node()
    {
        Assert.Equal("1700000000000.7@3", new HlcTimestamp(1_700_000_000_000, 7, 3).ToString());
    }
}
