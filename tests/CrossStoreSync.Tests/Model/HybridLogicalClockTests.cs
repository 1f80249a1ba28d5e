using CrossStoreSync.Model;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Model;

public sealed class HybridLogicalClockTests
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Timestamps_follow_the_wall_clock_and_carry_the_node_id()
    {
        var time = new ManualTimeProvider(Start);
        var clock = new HybridLogicalClock(time, nodeId: 42);

        var first = clock.Now();
        Assert.Equal(Start.ToUnixTimeMilliseconds(), first.WallTimeMs);
        Assert.Equal(0, first.Counter);
        Assert.Equal(42, first.NodeId);

        var sameMs = clock.Now();
        Assert.Equal(first.WallTimeMs, sameMs.WallTimeMs);
        Assert.Equal(1, sameMs.Counter);

        time.Advance(TimeSpan.FromSeconds(1));
        var later = clock.Now();
        Assert.Equal(Start.ToUnixTimeMilliseconds() + 1000, later.WallTimeMs);
        Assert.Equal(0, later.Counter);
    }

    [Fact]
    public void Clock_keeps_increasing_when_the_wall_clock_goes_backwards()
    {
        var time = new ManualTimeProvider(Start);
        var clock = new HybridLogicalClock(time, nodeId: 1);
        var previous = clock.Now();

        time.Set(Start - TimeSpan.FromHours(1));
        for (var i = 0; i < 10_000; i++)
        {
            var next = clock.Now();
            Assert.True(next > previous, $"{next} after {previous}");
            Assert.Equal(1, next.NodeId);
            previous = next;
        }

        // 10,000 ticks in one frozen millisecond overflow the 12-bit counter into the millisecond field.
        Assert.True(previous.WallTimeMs > Start.ToUnixTimeMilliseconds());
    }

    [Fact]
    public void After_observing_a_future_timestamp_every_new_one_is_newer()
    {
        var time = new ManualTimeProvider(Start);
        var clock = new HybridLogicalClock(time, nodeId: 0);
        var future = new HlcTimestamp(Start.ToUnixTimeMilliseconds() + 3_600_000, 17, 255);

        clock.Observe(future);
        var next = clock.Now();

        Assert.True(next > future, $"{next} is not after {future}");
        Assert.Equal(0, next.NodeId);

        // Observing something older does not move the clock back.
        clock.Observe(new HlcTimestamp(Start.ToUnixTimeMilliseconds(), 0, 0));
        Assert.True(clock.Now() > next);
    }

    [Fact]
    public async Task Concurrent_callers_get_distinct_strictly_increasing_timestamps_while_the_wall_clock_jumps()
    {
        const int Threads = 4;
        const int PerThread = 20_000;
        var time = new ManualTimeProvider(Start);
        var clock = new HybridLogicalClock(time, nodeId: 9);
        using var done = new CancellationTokenSource();

        var jitter = Task.Run(() =>
        {
            var step = 0;
            while (!done.IsCancellationRequested)
            {
                // Back and forth by up to a few seconds.
                time.Set(Start + TimeSpan.FromMilliseconds(((step++ % 7) - 3) * 1000));
                if (step % 3 == 0)
                {
                    clock.Observe(new HlcTimestamp(Start.ToUnixTimeMilliseconds() + (step % 5 * 100), step % 4096, 200));
                }
            }
        });

        var workers = Enumerable.Range(0, Threads).Select(_ => Task.Run(() =>
        {
            var issued = new long[PerThread];
            for (var i = 0; i < PerThread; i++)
            {
                issued[i] = clock.Now().Value;
            }

            return issued;
        })).ToArray();

        var results = await Task.WhenAll(workers).WaitAsync(TestEngine.Timeout);
        await done.CancelAsync();
        await jitter.WaitAsync(TestEngine.Timeout);

        foreach (var issued in results)
        {
            for (var i = 1; i < issued.Length; i++)
            {
                Assert.True(issued[i] > issued[i - 1], $"Timestamp {i} of a thread ({issued[i]}) is not after {issued[i - 1]}.");
            }
        }

        var all = results.SelectMany(r => r).ToArray();
        Assert.Equal(all.Length, all.Distinct().Count());
        Assert.All(all, v => Assert.Equal(9, new HlcTimestamp(v).NodeId));
    }

    [Fact]
    public void Node_id_out_of_range_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HybridLogicalClock(TimeProvider.System, 256));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HybridLogicalClock(TimeProvider.System, -1));
    }
}
