using CrossStoreSync.Model;

namespace CrossStoreSync.Consistency;

/// <summary>Counts findings of one store and keeps a bounded list of them.</summary>
internal sealed class FindingAccumulator(string store, int maxListed)
{
    private readonly List<ConsistencyFinding> _findings = [];
    private readonly HashSet<EntityKey> _seen = [];

    public string Store { get; } = store;

    public long Consistent { get; set; }

    public long Missing { get; private set; }

    public long Orphaned { get; private set; }

    public long Stale { get; private set; }

    public long Corrupted { get; private set; }

    public long NotExpected { get; set; }

    public long EntriesRead { get; set; }

    public long BytesRead { get; set; }

    public long BucketsCompared { get; set; }

    public long BucketsDiffering { get; set; }

    public bool Truncated { get; private set; }

    public long Total => Missing + Orphaned + Stale + Corrupted;

    /// <summary>Records a finding once per key; returns false when the key was already reported.</summary>
    public bool Add(EntityKey key, InconsistencyKind kind, HlcTimestamp? sourceVersion, HlcTimestamp? storeVersion)
    {
        if (!_seen.Add(key))
        {
            return false;
        }

        switch (kind)
        {
            case InconsistencyKind.Missing:
                Missing++;
                break;
            case InconsistencyKind.Orphaned:
                Orphaned++;
                break;
            case InconsistencyKind.Stale:
                Stale++;
                break;
            default:
                Corrupted++;
                break;
        }

        if (_findings.Count < maxListed)
        {
            _findings.Add(new ConsistencyFinding(key, kind, sourceVersion, storeVersion));
        }
        else
        {
            Truncated = true;
        }

        return true;
    }

    public StoreConsistencyReport ToReport(SamplingEstimate? estimate) =>
        new(Store, Consistent, Missing, Orphaned, Stale, Corrupted, _findings.ToArray(), Truncated, EntriesRead, BytesRead, BucketsCompared, BucketsDiffering, estimate);
}
