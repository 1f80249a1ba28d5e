using System.Globalization;
using System.Text;

namespace CrossStoreSync.Retention;

/// <summary>
/// When entries were appended, sampled once per retention round as (time, head) marks: every entry at or below a mark's
/// head was appended before the mark's time. The log's entries carry no append time of their own (versions are not
/// append times: repairs and replays carry old versions), so age is read from these marks. Kept in a checkpoint, so a
/// restart does not have to wait a whole <c>KeepAppliedFor</c> before truncating again. Not thread-safe (the retention
/// loop owns it).
/// </summary>
internal sealed class AppendTimeIndex
{
    public const string CheckpointName = "retention/append-times";

    // Thinned when it grows past this; dropping marks only ever makes the age bound lower, never wrong.
    private const int MaxMarks = 256;
    private readonly List<(long AtMs, long Lsn)> _marks = [];

    public int Count => _marks.Count;

    public void Record(DateTimeOffset at, long head)
    {
        var ms = at.ToUnixTimeMilliseconds();
        if (_marks.Count > 0 && (_marks[^1].AtMs > ms || _marks[^1].Lsn > head))
        {
            // A clock that went back, or a head read lower than before: keep the older, safer mark.
            return;
        }

        if (_marks.Count > 0 && _marks[^1].AtMs == ms)
        {
            // Everything up to the newer head was appended by this same instant too.
            _marks[^1] = (ms, head);
            return;
        }

        _marks.Add((ms, head));
        if (_marks.Count > MaxMarks)
        {
            for (var i = _marks.Count - 2; i >= 1; i -= 2)
            {
                _marks.RemoveAt(i);
            }
        }
    }

    /// <summary>The highest LSN known to have been appended at or before <paramref name="time"/>; 0 when none is known.</summary>
    public long AppendedBy(DateTimeOffset time)
    {
        var ms = time.ToUnixTimeMilliseconds();
        long lsn = 0;
        foreach (var (atMs, mark) in _marks)
        {
            if (atMs > ms)
            {
                break;
            }

            lsn = mark;
        }

        return lsn;
    }

    /// <summary>Drops marks older than the newest one at or before <paramref name="oldestNeeded"/>: they can no longer raise any bound.</summary>
    public void Prune(DateTimeOffset oldestNeeded)
    {
        var ms = oldestNeeded.ToUnixTimeMilliseconds();
        var keepFrom = 0;
        for (var i = 0; i < _marks.Count && _marks[i].AtMs <= ms; i++)
        {
            keepFrom = i;
        }

        _marks.RemoveRange(0, keepFrom);
    }

    public string Write()
    {
        var text = new StringBuilder();
        foreach (var (atMs, lsn) in _marks)
        {
            text.Append(CultureInfo.InvariantCulture, $"{atMs}:{lsn};");
        }

        return text.ToString();
    }

    /// <summary>Loads saved marks; a value that does not parse is ignored (the index starts empty, which only delays truncation).</summary>
    public void Load(string? saved)
    {
        _marks.Clear();
        if (string.IsNullOrEmpty(saved))
        {
            return;
        }

        foreach (var part in saved.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0
                || !long.TryParse(part.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var atMs)
                || !long.TryParse(part.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var lsn))
            {
                _marks.Clear();
                return;
            }

            Record(DateTimeOffset.FromUnixTimeMilliseconds(atMs), lsn);
        }
    }
}
