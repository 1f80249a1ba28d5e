using System.Collections.Concurrent;
using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrossStoreSync.Tests.Sync;

/// <summary>Back-off hints from stores (HTTP Retry-After, gRPC retry delays) in the dispatcher's retries.</summary>
public sealed class RetryAfterTests
{
    [Fact]
    public async Task Dispatcher_waits_at_least_the_back_off_a_store_asks_for()
    {
        var hint = TimeSpan.FromMilliseconds(1500);
        var time = new RecordingTimeProvider();
        await using var engine = await TestEngine.StartAsync(time: time);
        var calls = new ConcurrentQueue<long>();
        engine.VectorFaults.FailNextCalls(1, transient: true, retryAfter: hint);
        engine.VectorFaults.BeforeApply = _ =>
        {
            calls.Enqueue(TimeProvider.System.GetTimestamp());
            return ValueTask.CompletedTask;
        };

        var started = TimeProvider.System.GetTimestamp();
        await engine.WriteAndSyncAsync(Items.Entity("a"));

        // The retry was scheduled for exactly the hint (the engine's own back-off, 5 ms here, is shorter), and the store
        // was not called again before it (timers tick in whole milliseconds, so allow them that much).
        Assert.Contains(hint, time.Delays);
        var waited = TimeProvider.System.GetElapsedTime(started, calls.First());
        Assert.True(waited >= hint - TimeSpan.FromMilliseconds(50), $"The store was retried after {waited}, before the back-off it asked for.");
    }

    [Fact]
    public async Task Hint_longer_than_MaxRetryAfter_is_cut_to_it()
    {
        var time = new RecordingTimeProvider();
        await using var engine = await TestEngine.StartAsync(o => o.MaxRetryAfter = TimeSpan.FromMilliseconds(700), time: time);
        engine.VectorFaults.FailNextCalls(1, transient: true, retryAfter: TimeSpan.FromHours(1));

        await engine.WriteAndSyncAsync(Items.Entity("a"));

        Assert.Contains(TimeSpan.FromMilliseconds(700), time.Delays);
        Assert.DoesNotContain(time.Delays, d => d >= TimeSpan.FromHours(1));
    }

    [Fact]
    public void Hint_is_honoured_but_never_shortens_the_engines_own_back_off()
    {
        var options = new CrossStoreSyncOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(100), RetryMaxDelay = TimeSpan.FromSeconds(30) };
        var hinted = new SyncStoreException("busy", true) { RetryAfter = TimeSpan.FromSeconds(2) };
        var logger = NullLogger.Instance;

        Assert.Equal(TimeSpan.FromSeconds(2), ResiliencePipelines.HonourRetryAfter("s", options, 0, hinted, logger));
        Assert.Equal(TimeSpan.FromMilliseconds(6400), ResiliencePipelines.HonourRetryAfter("s", options, 6, hinted, logger));
        Assert.Equal(TimeSpan.FromSeconds(30), ResiliencePipelines.HonourRetryAfter("s", options, 40, hinted, logger));
        Assert.Null(ResiliencePipelines.HonourRetryAfter("s", options, 0, new SyncStoreException("busy", true), logger));

        // Found on a wrapped cause too; a negative hint means "now".
        Assert.Equal(TimeSpan.FromSeconds(2), ResiliencePipelines.HonourRetryAfter("s", options, 0, new InvalidOperationException("outer", hinted), logger));
        Assert.Equal(TimeSpan.FromMilliseconds(100), ResiliencePipelines.HonourRetryAfter("s", options, 0, new SyncStoreException("busy", true) { RetryAfter = TimeSpan.FromSeconds(-5) }, logger));
    }

    [Fact]
    public void MaxRetryAfter_is_validated_at_start()
    {
        var options = new CrossStoreSyncOptions { MaxRetryAfter = TimeSpan.Zero };
        options.AddCollection("items");
        var result = new CrossStoreSyncOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains("MaxRetryAfter is 00:00:00", result.FailureMessage, StringComparison.Ordinal);
    }

    /// <summary>The system clock, recording the due time of every timer created through it (Polly's retry delays among them).</summary>
    private sealed class RecordingTimeProvider : TimeProvider
    {
        private readonly ConcurrentQueue<TimeSpan> _delays = new();

        public IReadOnlyCollection<TimeSpan> Delays => _delays;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _delays.Enqueue(dueTime);
            return System.CreateTimer(callback, state, dueTime, period);
        }
    }
}
