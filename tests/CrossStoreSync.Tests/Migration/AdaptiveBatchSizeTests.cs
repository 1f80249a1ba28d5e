using CrossStoreSync.Migration;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Migration;

public sealed class AdaptiveBatchSizeTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(100);

    /// <summary>One observation: a batch of some size written in some time, or a failure.</summary>
    private readonly record struct Outcome(bool Failed, int SizeFraction, int LatencyMs);

    [Fact]
    public void The_size_stays_within_bounds_grows_additively_when_fast_and_halves_when_slow_or_failing()
    {
        var outcomes = Gen.Choose(0, 9).Zip(Gen.Choose(0, 100)).Zip(Gen.Choose(0, 300))
            .Select(t => new Outcome(t.Item1.Item1 == 0, t.Item1.Item2, t.Item2));
        var cases =
            from min in Gen.Choose(1, 200)
            from span in Gen.Choose(0, 5000)
            from initialFraction in Gen.Choose(0, 100)
            from sequence in Gen.ArrayOf(outcomes)
            select (min, max: min + span, initial: min + (span * initialFraction / 100), sequence);

        Prop.ForAll(Arb.From(cases), c =>
        {
            var controller = new AdaptiveBatchSize(c.initial, c.min, c.max, Target);
            var step = Math.Max(c.min, (c.max - c.min) / 16);
            var lowest = controller.Current;
            var highest = controller.Current;
            foreach (var o in c.sequence)
            {
                var before = controller.Current;
                var size = Math.Max(1, before * o.SizeFraction / 100);
                if (o.Failed)
                {
                    controller.OnFailure();
                    Assert.Equal(Math.Max(c.min, before / 2), controller.Current);
                }
                else
                {
                    controller.OnSuccess(size, TimeSpan.FromMilliseconds(o.LatencyMs));
                    var expected = o.LatencyMs > Target.TotalMilliseconds ? Math.Max(c.min, before / 2)
                        : size >= before ? Math.Min(c.max, before + step)
                        : before;
                    Assert.Equal(expected, controller.Current);
                }

                Assert.InRange(controller.Current, c.min, c.max);
                lowest = Math.Min(lowest, controller.Current);
                highest = Math.Max(highest, controller.Current);
            }

            Assert.Equal((lowest, controller.Current, highest), controller.Range);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Under_a_steady_latency_model_it_settles_near_the_size_the_target_allows()
    {
        // A target that takes 0.1 ms per entity: 100 ms allows about 1,000 entities.
        var controller = new AdaptiveBatchSize(64, 16, 8192, Target);
        var sizes = new List<int>();
        for (var i = 0; i < 400; i++)
        {
            var size = controller.Current;
            controller.OnSuccess(size, TimeSpan.FromMilliseconds(size * 0.1));
            sizes.Add(controller.Current);
        }

        var settled = sizes.Skip(200).ToArray();
        Assert.InRange(settled.Max(), 1000, 1000 + Math.Max(16, (8192 - 16) / 16));
        Assert.InRange(settled.Min(), 500 - 1, 1000);
    }
}
