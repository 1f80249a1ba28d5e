namespace CrossStoreSync.Migration;

/// <summary>
/// Chooses batch sizes by AIMD, as TCP chooses its window: grow by a fixed step while writes finish within the target
/// latency, halve when one takes longer or fails. Shared by a migration's workers, so together they probe one
/// target's capacity. Thread-safe.
/// </summary>
internal sealed class AdaptiveBatchSize
{
    private readonly Lock _gate = new();
    private readonly int _min;
    private readonly int _max;
    private readonly int _step;
    private readonly TimeSpan _target;
    private int _current;
    private int _lowest;
    private int _highest;

    public AdaptiveBatchSize(int initial, int min, int max, TimeSpan target)
    {
        _min = min;
        _max = max;
        _target = target;
        _current = Math.Clamp(initial, min, max);
        _lowest = _highest = _current;

        // A step of 1/16 of the range takes a few dozen good batches to climb from the bottom to the top, and
        // at least the minimum so small ranges still move.
        _step = Math.Max(min, (max - min) / 16);
    }

    public int Current => Volatile.Read(ref _current);

    public (int Min, int Current, int Max) Range
    {
        get
        {
            lock (_gate)
            {
                return (_lowest, _current, _highest);
            }
        }
    }

    /// <summary>Records a batch written in <paramref name="latency"/>.</summary>
    /// <param name="size">The batch's size: only a batch at least as large as the current size may grow it, so the
    /// last short page of a range does not count as proof that larger batches are fast.</param>
    /// <param name="latency">How long the write took.</param>
    public void OnSuccess(int size, TimeSpan latency)
    {
        lock (_gate)
        {
            if (latency > _target)
            {
                Decrease();
            }
            else if (size >= _current)
            {
                Set(Math.Min(_max, _current + _step));
            }
        }
    }

    /// <summary>Records a failed write.</summary>
    public void OnFailure()
    {
        lock (_gate)
        {
            Decrease();
        }
    }

    private void Decrease() => Set(Math.Max(_min, _current / 2));

    private void Set(int value)
    {
        Volatile.Write(ref _current, value);
        _lowest = Math.Min(_lowest, value);
        _highest = Math.Max(_highest, value);
    }
}
