using CrossStoreSync.Errors;

using CrossStoreSync.Log;
using CrossStoreSync.Model;

namespace CrossStoreSync.Replication;

/// <summary>
/// The replication rule (DESIGN.md §7), as a pure function of a received state and the stored one: a state the node has
/// seen is dropped, one that has seen the stored state replaces it, and two concurrent states are reconciled by the
/// collection's resolver and recorded as a conflict. Histories only grow, so the same states reach the same result on
/// every node in any order.
/// </summary>
internal static class ReplicationDecisions
{
    /// <summary>Decides what to do with <paramref name="incoming"/>.</summary>
    /// <param name="incoming">The received state (validated: its history covers its version).</param>
    /// <param name="local">What the source holds, or null.</param>
    /// <param name="fromNode">The sender's node id.</param>
    /// <param name="resolver">The collection's resolver.</param>
    /// <param name="issueVersion">Issues a new version of this node, newer than everything seen (for resolutions).</param>
    /// <param name="now">The detection time of conflicts.</param>
    public static ReplicationDecision Decide(ReplicatedState incoming, StoredState? local, int fromNode, IConflictResolver resolver, Func<HlcTimestamp> issueVersion, DateTimeOffset now)
    {
        if (local is null)
        {
            return new ReplicationDecision(ReplicationAction.Write, incoming.Change, incoming.History, fromNode, null);
        }

        var merged = local.History.Merge(incoming.History);
        switch (Order(incoming, local))
        {
            case CausalOrder.Same:
            case CausalOrder.SupersededBy:
                // The node holds this event or a later one; only the history may have something new.
                return merged == local.History
                    ? ReplicationDecision.Ignore
                    : new ReplicationDecision(ReplicationAction.MergeHistory, null, merged, null, null);
            case CausalOrder.Supersedes:
                return new ReplicationDecision(ReplicationAction.Write, incoming.Change, merged, fromNode, null);
            default:
                return Reconcile(incoming, local, merged, fromNode, resolver, issueVersion, now);
        }
    }

    /// <summary>
    /// True when deciding on <paramref name="incoming"/> reconciles it with <paramref name="local"/>, the one case that
    /// reads the stored content (the resolver, the conflict record); a log may read only the stored version, history and
    /// hash otherwise (<see cref="ReplicationDecider"/>).
    /// </summary>
    public static bool NeedsStoredContent(ReplicatedState incoming, StoredState local) => Order(incoming, local) == CausalOrder.Concurrent;

    /// <summary>How <paramref name="incoming"/> relates to <paramref name="local"/>, as the rule treats it.</summary>
    private static CausalOrder Order(ReplicatedState incoming, StoredState local)
    {
        var order = VersionVector.Compare(incoming.Change.Version, incoming.History, local.Change.Version, local.History);

        // A state that has "seen" a newer version than its own is malformed; reconciling it as a conflict keeps both
        // contents on record instead of letting a version guard drop one silently.
        return order == CausalOrder.Supersedes && incoming.Change.Version <= local.Change.Version ? CausalOrder.Concurrent : order;
    }

    private static ReplicationDecision Reconcile(ReplicatedState incoming, StoredState local, VersionVector merged, int fromNode, IConflictResolver resolver, Func<HlcTimestamp> issueVersion, DateTimeOffset now)
    {
        var incomingIsNewer = incoming.Change.Version > local.Change.Version;
        var newer = incomingIsNewer ? incoming.Change : local.Change;
        var older = incomingIsNewer ? local.Change : incoming.Change;

        // Equal content needs no resolver: keeping the newer version is what every node does, so two nodes that
        // resolved the same conflict separately converge without resolving again.
        var chosen = SameContent(newer, older)
            ? newer
            : Choose(resolver.Resolve(ToConflicting(older), ToConflicting(newer)), older, newer);

        if (SameContent(chosen, newer))
        {
            if (incomingIsNewer)
            {
                return new ReplicationDecision(ReplicationAction.Write, incoming.Change, merged, fromNode,
                    [Record(incoming.Change.Key, now, fromNode, incoming.Change.Version, local.Change, ConflictResolutionKind.TookRemote)]);
            }

            return new ReplicationDecision(ReplicationAction.MergeHistory, null, merged, null,
                [Record(incoming.Change.Key, now, fromNode, local.Change.Version, incoming.Change, ConflictResolutionKind.KeptLocal)]);
        }

        // The kept content is not the newer state's: it becomes a new state of this node, newer than both, so every
        // version guard accepts it and every node sees that it supersedes the two.
        var version = issueVersion();
        var write = chosen.Entity is { } entity
            ? EntityChange.Upsert(entity.Key == incoming.Change.Key ? entity : throw MergedKeyMismatch(incoming.Change.Key, entity.Key), version)
            : EntityChange.Delete(incoming.Change.Key, version);
        ConflictRecord[] conflicts = SameContent(chosen, older)
            ? [Record(incoming.Change.Key, now, fromNode, version, newer, ConflictResolutionKind.Resolved)]
            : [Record(incoming.Change.Key, now, fromNode, version, local.Change, ConflictResolutionKind.Resolved), Record(incoming.Change.Key, now, fromNode, version, incoming.Change, ConflictResolutionKind.Resolved)];
        return new ReplicationDecision(ReplicationAction.Write, write, merged.With(version), null, conflicts);
    }

    private static EntityChange Choose(ConflictResolution resolution, EntityChange older, EntityChange newer) => resolution?.Choice switch
    {
        ConflictResolutionChoice.KeepNewer => newer,
        ConflictResolutionChoice.KeepOlder => older,
        ConflictResolutionChoice.Delete => newer.Kind == ChangeKind.Delete ? newer : older.Kind == ChangeKind.Delete ? older : EntityChange.Delete(newer.Key, HlcTimestamp.Zero),
        ConflictResolutionChoice.Merge => EntityChange.Upsert(resolution.Merged!, HlcTimestamp.Zero),
        _ => throw new InvalidOperationException($"The conflict resolver returned no resolution for {SafeText.Quote(newer.Key)}."),
    };

    /// <summary>True when both are deletes, or both upserts of the same content.</summary>
    public static bool SameContent(EntityChange a, EntityChange b) =>
        a.Kind == b.Kind && (a.Kind == ChangeKind.Delete || a.ContentHash == b.ContentHash);

    private static ConflictingState ToConflicting(EntityChange change) => new(change.Key, change.Version, change.Entity);

    private static ConflictRecord Record(EntityKey key, DateTimeOffset now, int fromNode, HlcTimestamp winner, EntityChange loser, ConflictResolutionKind resolution) =>
        new(0, key, now, fromNode, winner, loser, resolution);

    private static InvalidOperationException MergedKeyMismatch(EntityKey key, EntityKey merged) =>
        new($"The conflict resolver merged {SafeText.Quote(key)} into an entity keyed {SafeText.Quote(merged)}; a merge must keep the key.");
}
