using CrossStoreSync.Telemetry;

namespace CrossStoreSync.Retention;

/// <summary>What one retention round may remove, decided from the positions that hold the log back.</summary>
/// <param name="LowWaterMark">The lowest position of everyone still holding (cut-off stores left out); the head when no one holds.</param>
/// <param name="TruncateThrough">Every entry at or below it may be removed.</param>
/// <param name="CutOff">Stores that fell behind past the cap: the log is truncated past them and they need a rebuild.</param>
internal sealed record RetentionPlan(long LowWaterMark, long TruncateThrough, IReadOnlyList<RetentionPosition> CutOff);

/// <summary>
/// The retention rule, as a pure function so a property test can check it: never remove an entry above the position of a
/// store, migration, pending write or holder that is not cut off; never remove an entry younger than
/// <c>KeepAppliedFor</c> unless the cap says so; cut off only stores, and only those both beyond the cap and older than
/// <c>KeepAppliedFor</c> (a replica reading through a burst is not cut off).
/// </summary>
internal static class RetentionPlanner
{
    /// <param name="head">The last LSN appended.</param>
    /// <param name="truncatedThrough">What the log already removed.</param>
    /// <param name="ageBound">Every entry at or below it was appended more than <c>KeepAppliedFor</c> ago.</param>
    /// <param name="positions">Who needs what.</param>
    /// <param name="capEntries">The most entries a lagging store may hold back, or null for no cap.</param>
    public static RetentionPlan Plan(long head, long truncatedThrough, long ageBound, IReadOnlyList<RetentionPosition> positions, long? capEntries)
    {
        ageBound = Math.Clamp(ageBound, 0, head);
        var cutOff = new List<RetentionPosition>();
        var cutBelow = capEntries is { } cap ? Math.Min(head - cap, ageBound) : long.MinValue;
        var lowWaterMark = head;
        foreach (var position in positions)
        {
            var at = Math.Clamp(position.Position, 0, head);
            if (position.Kind == RetentionHolderKind.Store && at < cutBelow)
            {
                cutOff.Add(position);
                continue;
            }

            lowWaterMark = Math.Min(lowWaterMark, at);
        }

        // Entries every holder is done with go once they are old enough; beyond the cap they go even when younger.
        var byAge = capEntries is { } limit ? Math.Max(ageBound, head - limit) : ageBound;
        var through = Math.Max(truncatedThrough, Math.Min(lowWaterMark, byAge));
        return new RetentionPlan(lowWaterMark, through, cutOff);
    }
}
