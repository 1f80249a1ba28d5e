using CrossStoreSync.Errors;

using CrossStoreSync.Log;
using CrossStoreSync.Stores;

namespace CrossStoreSync.Sync;

/// <summary>The change log, the source of truth and the replicas the engine runs, resolved from DI and checked once.</summary>
internal sealed class StoreTopology
{
    public StoreTopology(IChangeLog log, IDocumentStore source, IReadOnlyList<ISyncStore> replicas)
    {
        Log = log;
        Source = source;
        Replicas = replicas;
        Coupled = log is ISourceCoupledChangeLog coupled && coupled.CoupledSource is not null && ReferenceEquals(coupled.CoupledSource, source) ? coupled : null;

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var store in Stores)
        {
            if (string.IsNullOrWhiteSpace(store.Name))
            {
                throw new InvalidOperationException($"A store of type {store.GetType().Name} has an empty Name; every store needs a unique, stable name.");
            }

            if (!names.Add(store.Name))
            {
                throw new InvalidOperationException($"Two stores are named {SafeText.Quote(store.Name)}; store names key cursors and dead letters and must be unique.");
            }
        }

        foreach (var replica in replicas)
        {
            if (ReferenceEquals(replica, source))
            {
                throw new InvalidOperationException($"Store {SafeText.Quote(source.Name)} is registered both as the source of truth and as a replica.");
            }
        }
    }

    public IChangeLog Log { get; }

    public IDocumentStore Source { get; }

    public IReadOnlyList<ISyncStore> Replicas { get; }

    /// <summary>Set when the log commits in one transaction with the source (SQLite, PostgreSQL).</summary>
    public ISourceCoupledChangeLog? Coupled { get; }

    public IEnumerable<ISyncStore> Stores
    {
        get
        {
            yield return Source;
            foreach (var replica in Replicas)
            {
                yield return replica;
            }
        }
    }
}
