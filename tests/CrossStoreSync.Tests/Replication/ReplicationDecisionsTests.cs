using System.Text;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Replication;

public sealed class ReplicationDecisionsTests
{
    private static readonly EntityKey Key = new("notes", "n-1");
    private static readonly DateTimeOffset Now = DateTimeOffset.UnixEpoch;

    // An operation of the model: write (node, content; content 0 = delete) or deliver (from, to).
    private static readonly Gen<(bool Write, int A, int B)> Operation =
        Gen.OneOf(
            from node in Gen.Choose(0, 2) from content in Gen.Choose(0, 5) select (true, node, content),
            from sender in Gen.Choose(0, 2) from receiver in Gen.Choose(0, 2) where sender != receiver select (false, sender, receiver));

    [Fact]
    public void Nodes_converge_to_the_last_writer_whatever_the_delivery_order()
    {
        Prop.ForAll(Arb.From(Gen.ListOf(Operation)), ops =>
        {
            var model = new Model(3, LastWriterWinsResolver.Instance);
            model.Run(ops);
            model.ExchangeUntilStable();
            model.AssertConverged();
            if (model.Newest is { } newest)
            {
                // Last writer wins: the newest write ever made is what every node keeps.
                Assert.Equal(newest.Version, model.Nodes[0].State!.Change.Version);
                Assert.True(ReplicationDecisions.SameContent(newest, model.Nodes[0].State!.Change));
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Nodes_converge_with_a_merging_resolver()
    {
        Prop.ForAll(Arb.From(Gen.ListOf(Operation)), ops =>
        {
            var model = new Model(3, new UnionResolver());
            model.Run(ops);
            model.ExchangeUntilStable();
            model.AssertConverged();
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Every_concurrent_pair_that_meets_is_recorded_with_the_loser()
    {
        var model = new Model(2, LastWriterWinsResolver.Instance);
        var a = model.Write(0, 1);
        var b = model.Write(1, 2);
        model.Deliver(0, 1);
        model.Deliver(1, 0);

        var winner = a.Version > b.Version ? a : b;
        var loser = a.Version > b.Version ? b : a;
        model.AssertConverged();
        Assert.Equal(winner.Version, model.Nodes[0].State!.Change.Version);
        var recorded = model.Nodes.SelectMany(n => n.Conflicts).ToList();
        Assert.NotEmpty(recorded);
        Assert.All(recorded, c => Assert.Equal(loser.Version, c.Loser.Version));
        Assert.All(recorded, c => Assert.Equal(winner.Version, c.Winner));
    }

    [Fact]
    public void A_state_already_seen_is_ignored_and_a_newer_one_applied()
    {
        var model = new Model(2, LastWriterWinsResolver.Instance);
        model.Write(0, 1);
        model.Deliver(0, 1);
        var second = model.Write(1, 2); // written on node 1 after it saw node 0's state

        Assert.Equal(ReplicationAction.Ignore, model.Deliver(0, 1).Action); // node 1 has seen it
        Assert.Equal(ReplicationAction.Write, model.Deliver(1, 0).Action);   // supersedes node 0's state
        Assert.Equal(second.Version, model.Nodes[0].State!.Change.Version);
        Assert.Empty(model.Nodes.SelectMany(n => n.Conflicts));
    }

    [Fact]
    public void A_resolver_that_keeps_the_older_state_writes_it_as_a_new_state_newer_than_both()
    {
        var model = new Model(2, new KeepOlderResolver());
        var a = model.Write(0, 1);
        var b = model.Write(1, 2);
        var decision = model.Deliver(0, 1);

        Assert.Equal(ReplicationAction.Write, decision.Action);
        Assert.Null(decision.ReceivedFrom);
        var older = a.Version < b.Version ? a : b;
        Assert.True(ReplicationDecisions.SameContent(older, decision.Write!));
        Assert.True(decision.Write!.Version > a.Version && decision.Write.Version > b.Version);
        Assert.True(decision.History.Covers(a.Version) && decision.History.Covers(b.Version));
        model.ExchangeUntilStable();
        model.AssertConverged();
    }

    private sealed class Model(int count, IConflictResolver resolver)
    {
        public Node[] Nodes { get; } = Enumerable.Range(0, count).Select(i => new Node(i)).ToArray();

        public EntityChange? Newest { get; private set; }

        public void Run(IEnumerable<(bool Write, int A, int B)> ops)
        {
            foreach (var (write, a, b) in ops)
            {
                if (a >= Nodes.Length || b >= Nodes.Length && !write)
                {
                    continue;
                }

                if (write)
                {
                    Write(a, b);
                }
                else
                {
                    Deliver(a, b);
                }
            }
        }

        public EntityChange Write(int node, int content)
        {
            var n = Nodes[node];
            var version = n.Issue();
            var change = content == 0 ? EntityChange.Delete(Key, version) : EntityChange.Upsert(Entity(Encoding.ASCII.GetString([(byte)('a' + content)])), version);

            // What the stores' SQL does for a local write: the replaced state's history plus the new version.
            n.Set(new StoredState(change, (n.State?.History ?? VersionVector.Empty).With(version), null));
            if (Newest is null || version > Newest.Version)
            {
                Newest = change;
            }

            return change;
        }

        public ReplicationDecision Deliver(int from, int to)
        {
            var source = Nodes[from].State;
            if (source is null)
            {
                return ReplicationDecision.Ignore;
            }

            var target = Nodes[to];
            target.Observe(source.Change.Version);
            var decision = ReplicationDecisions.Decide(new ReplicatedState(0, source.Change, source.History), target.State, from, resolver, target.Issue, Now);
            switch (decision.Action)
            {
                case ReplicationAction.Write:
                    target.Set(new StoredState(decision.Write!, decision.History, decision.ReceivedFrom));
                    break;
                case ReplicationAction.MergeHistory:
                    target.Set(target.State! with { History = decision.History });
                    break;
            }

            target.Conflicts.AddRange(decision.Conflicts ?? []);
            return decision;
        }

        public void ExchangeUntilStable()
        {
            for (var round = 0; round < 10; round++)
            {
                var before = Nodes.Select(n => n.State).ToArray();
                for (var i = 0; i < Nodes.Length; i++)
                {
                    for (var j = 0; j < Nodes.Length; j++)
                    {
                        if (i != j)
                        {
                            Deliver(i, j);
                        }
                    }
                }

                if (before.SequenceEqual(Nodes.Select(n => n.State)))
                {
                    return;
                }
            }

            Assert.Fail("The nodes did not settle within 10 rounds of full exchange: " + string.Join("; ", Nodes.Select(n => n.State?.Change.ToString())));
        }

        public void AssertConverged()
        {
            var first = Nodes[0].State;
            foreach (var node in Nodes)
            {
                Assert.Equal(first is null, node.State is null);
                if (first is not null)
                {
                    Assert.Equal(first.Change.Version, node.State!.Change.Version);
                    Assert.True(ReplicationDecisions.SameContent(first.Change, node.State.Change));
                }
            }
        }
    }

    private sealed class Node(int id)
    {
        private long _clock;

        public StoredState? State { get; private set; }

        public List<ConflictRecord> Conflicts { get; } = [];

        public HlcTimestamp Issue() => new(++_clock, 0, id);

        public void Observe(HlcTimestamp seen) => _clock = Math.Max(_clock, seen.WallTimeMs);

        public void Set(StoredState state)
        {
            // No version going backwards on a node, whatever arrives.
            Assert.True(State is null || state.Change.Version >= State.Change.Version, $"node {id}: {State?.Change} replaced by older {state.Change}");
            Assert.True(state.History.Covers(state.Change.Version));
            State = state;
        }
    }

    private static SyncEntity Entity(string text) => SyncEntity.FromJson(Key, $$"""{"t":"{{text}}"}""");

    private static string TextOf(SyncEntity entity) => System.Text.Json.JsonDocument.Parse(entity.Document).RootElement.GetProperty("t").GetString()!;

    /// <summary>Keeps the union of the letters of both sides (deletes lose to content): a merge with a fixed point.</summary>
    private sealed class UnionResolver : IConflictResolver
    {
        public ConflictResolution Resolve(ConflictingState older, ConflictingState newer)
        {
            if (older.Entity is null || newer.Entity is null)
            {
                return older.Entity is null ? ConflictResolution.KeepNewer : ConflictResolution.KeepOlder;
            }

            var letters = new string(TextOf(older.Entity).Union(TextOf(newer.Entity)).Order().ToArray());
            return ConflictResolution.Merge(Entity(letters));
        }
    }

    private sealed class KeepOlderResolver : IConflictResolver
    {
        public ConflictResolution Resolve(ConflictingState older, ConflictingState newer) => ConflictResolution.KeepOlder;
    }
}
