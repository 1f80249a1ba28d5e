using CrossStoreSync.Configuration;
using CrossStoreSync.Retention;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Retention;

/// <summary>An engine whose retention rounds the test runs by hand, on a clock it moves by hand.</summary>
internal static class RetentionSupport
{
    public static readonly DateTimeOffset Start = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// Starts the in-memory engine with retention on, rounds only when the test runs them (the loop's first round is
    /// waited for, so it cannot land in the middle of the test), and a manual clock.
    /// </summary>
    public static async Task<(TestEngine Engine, ManualTimeProvider Time, LogRetention Retention)> StartAsync(
        Action<CrossStoreSyncOptions>? configure = null,
        Action<IServiceCollection>? configureServices = null,
        TestEngine? restartOf = null,
        string vectorStoreName = "vectors",
        ManualTimeProvider? time = null)
    {
        time ??= new ManualTimeProvider(Start);
        var engine = await TestEngine.StartAsync(
            o =>
            {
                o.Retention.KeepAppliedFor = TimeSpan.FromMinutes(1);
                o.Retention.TruncationInterval = TimeSpan.FromDays(1);
                o.Retention.TruncationBatchSize = 3;
                configure?.Invoke(o);
            },
            configureServices: configureServices,
            restartOf: restartOf,
            vectorStoreName: vectorStoreName,
            time: time);
        var retention = engine.Services.GetRequiredService<LogRetention>();
        using var timeout = new CancellationTokenSource(TestEngine.Timeout);
        await retention.Rounds.WaitForAsync(1, timeout.Token);
        return (engine, time, retention);
    }

    /// <summary>Waits until the given replicas (default: all) have saved cursors at or past <paramref name="lsn"/>: retention reads saved cursors.</summary>
    public static async Task SettleAsync(this TestEngine engine, long lsn, params string[] stores)
    {
        using var timeout = new CancellationTokenSource(TestEngine.Timeout);
        foreach (var dispatcher in engine.Engine.Dispatchers)
        {
            if (stores.Length == 0 || stores.Contains(dispatcher.Name))
            {
                await dispatcher.SavedCursor.WaitForAsync(lsn, timeout.Token);
            }
        }
    }

    /// <summary>Runs a round now.</summary>
    public static async Task<RetentionRound> RoundAsync(this LogRetention retention)
    {
        using var timeout = new CancellationTokenSource(TestEngine.Timeout);
        return await retention.RunRoundAsync(timeout.Token);
    }

    /// <summary>Runs a round, lets more than KeepAppliedFor pass, and runs another: what is old enough goes.</summary>
    public static async Task<RetentionRound> AgeAndRoundAsync(this LogRetention retention, ManualTimeProvider time, TimeSpan? by = null)
    {
        await retention.RoundAsync();
        time.Advance(by ?? TimeSpan.FromMinutes(2));
        return await retention.RoundAsync();
    }
}

/// <summary>A retention holder whose position the test sets.</summary>
internal sealed class SettableHolder(string name) : CrossStoreSync.Log.ILogRetentionHolder
{
    private readonly Lock _gate = new();
    private long? _position;
    private volatile bool _fail;

    public string Name => name;

    public long? Position
    {
        get
        {
            lock (_gate)
            {
                return _position;
            }
        }

        set
        {
            lock (_gate)
            {
                _position = value;
            }
        }
    }

    public bool Fail
    {
        get => _fail;
        set => _fail = value;
    }

    public ValueTask<long?> GetRetainedThroughAsync(CancellationToken cancellationToken) =>
        _fail ? throw new InvalidOperationException("peer store unreachable") : ValueTask.FromResult(Position);
}
