namespace CrossStoreSync.Tests.Shared;

/// <summary>A wall clock the test moves by hand; timers and timestamps stay real (only <see cref="GetUtcNow"/> is overridden).</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _utcTicks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
