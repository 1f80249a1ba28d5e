using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;

namespace CrossStoreSync.ConformanceKit;

/// <summary>Conformance for document stores: the shared suite plus full-entity reads and paged scans.</summary>
public abstract class DocumentStoreConformanceTests : StoreConformanceTests
{
    private IDocumentStore Documents => (IDocumentStore)Store;

    [Fact]
    public async Task Read_returns_the_entity_exactly_as_written()
    {
        var entity = new SyncEntity(
            new EntityKey(Items, "exact"),
            Encoding.UTF8.GetBytes("{ \"b\": [1, 2.50, true, null], \"a\": \"ü\\n\" }"),
            new float[] { 0.1f, -2.5f, 3e-7f, float.MaxValue },
            [new SyncEdge("LINKS", new EntityKey(Other, "x"), Encoding.UTF8.GetBytes("{\"k\":\"v\"}")), new SyncEdge("ALSO", new EntityKey(Items, "y"))]);
        var change = EntityChange.Upsert(entity, V(7));
        await Apply(change);

        var read = await Documents.ReadAsync(entity.Key, CancellationToken.None);
        Assert.NotNull(read);
        Assert.Equal(V(7), read.Version);
        Assert.Equal(change.ContentHash, read.ContentHash);
        Assert.Equal(entity.Document.ToArray(), read.Entity.Document.ToArray());
        Assert.Equal(entity.Vector.ToArray(), read.Entity.Vector.ToArray());
        Assert.Equal(entity.Edges.Select(e => (e.Type, e.Target, Encoding.UTF8.GetString(e.Properties.Span))), read.Entity.Edges.Select(e => (e.Type, e.Target, Encoding.UTF8.GetString(e.Properties.Span))));
        Assert.Equal(change.ContentHash, Hashing.EntityEncoding.ComputeContentHash(read.Entity));
    }

    [Fact]
    public async Task Read_of_a_deleted_or_missing_entity_returns_null()
    {
        var key = new EntityKey(Items, "gone");
        await Apply(EntityChange.Upsert(Entity("gone"), V(1)));
        await Apply(EntityChange.Delete(key, V(2)));
        Assert.Null(await Documents.ReadAsync(key, CancellationToken.None));
        Assert.Null(await Documents.ReadAsync(new EntityKey(Items, "never"), CancellationToken.None));
    }

    [Fact]
    public async Task Scan_pages_through_entities_in_id_order_without_gaps_or_duplicates()
    {
        var ids = Enumerable.Range(0, 1234).Select(i => $"id{i:D5}").ToArray();
        await Store.ApplyAsync(ids.Select(id => EntityChange.Upsert(Entity(id), V(1))).ToArray(), CancellationToken.None);
        await Apply(EntityChange.Delete(new EntityKey(Items, "id00005"), V(2)));

        var seen = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await Documents.ScanAsync(Items, after, 100, CancellationToken.None);
            if (page.Count == 0)
            {
                break;
            }

            Assert.True(page.Count <= 100);
            seen.AddRange(page.Select(p => p.Entity.Key.Id));
            after = page[^1].Entity.Key.Id;
        }

        Assert.Equal(ids.Where(id => id != "id00005").ToArray(), seen.ToArray());
    }

    [Fact]
    public async Task Bucket_scan_pages_disjoint_ranges_in_bucket_order_and_together_covers_every_entity()
    {
        var ids = Enumerable.Range(0, 1500).Select(i => $"k{i}").ToArray();
        await Store.ApplyAsync(ids.Select(id => EntityChange.Upsert(Entity(id), V(1))).ToArray(), CancellationToken.None);
        await Apply(EntityChange.Delete(new EntityKey(Items, "k7"), V(2)), EntityChange.Upsert(Entity("k1", collection: Other), V(1)));

        var seen = new List<string>();
        for (var part = 0u; part < 4; part++)
        {
            var range = BucketRange.ForPrefix(2, part);
            string? after = null;
            var previous = (Bucket: -1L, Id: string.Empty);
            while (true)
            {
                var page = await Documents.ScanBucketsAsync(Items, range, after, 97, CancellationToken.None);
                Assert.True(page.Count <= 97);
                foreach (var e in page)
                {
                    var bucket = (long)KeyHash.Bucket(e.Entity.Key);
                    Assert.True(range.Contains((uint)bucket), $"{e.Entity.Key} is outside {range}.");
                    Assert.True(bucket > previous.Bucket || (bucket == previous.Bucket && string.CompareOrdinal(e.Entity.Key.Id, previous.Id) > 0), "Pages must be ordered by (bucket, id).");
                    previous = (bucket, e.Entity.Key.Id);
                    seen.Add(e.Entity.Key.Id);
                }

                if (page.Count < 97)
                {
                    break;
                }

                after = page[^1].Entity.Key.Id;
            }
        }

        Assert.Equal(ids.Where(id => id != "k7").Order(StringComparer.Ordinal).ToArray(), seen.Order(StringComparer.Ordinal).ToArray());
    }
}

/// <summary>Conformance for vector stores: the shared suite plus search and dimension checks.</summary>
public abstract class VectorStoreConformanceTests : StoreConformanceTests
{
    private IVectorStore Vectors => (IVectorStore)Store;

    [Fact]
    public async Task Search_returns_the_nearest_vectors_first()
    {
        await Apply(
            EntityChange.Upsert(Entity("x", vector: [1, 0, 0, 0]), V(1)),
            EntityChange.Upsert(Entity("y", vector: [0, 1, 0, 0]), V(1)),
            EntityChange.Upsert(Entity("xy", vector: [1, 1, 0, 0]), V(1)));

        var hits = await Vectors.SearchAsync(Items, new float[] { 1, 0.1f, 0, 0 }, 2, CancellationToken.None);
        Assert.Equal(["x", "xy"], hits.Select(h => h.Key.Id).ToArray());
        Assert.True(hits[0].Score > hits[1].Score);
    }

    [Fact]
    public async Task Deleted_vectors_are_not_found()
    {
        await Apply(EntityChange.Upsert(Entity("x", vector: [1, 0, 0, 0]), V(1)));
        await Apply(EntityChange.Delete(new EntityKey(Items, "x"), V(2)));
        var hits = await Vectors.SearchAsync(Items, new float[] { 1, 0, 0, 0 }, 5, CancellationToken.None);
        Assert.Empty(hits);
    }

    [Fact]
    public async Task A_vector_of_the_wrong_dimension_is_rejected_with_a_clear_error()
    {
        var bad = EntityChange.Upsert(Entity("bad", vector: [1, 2, 3]), V(1));
        var error = await Assert.ThrowsAnyAsync<SyncStoreException>(async () => await Apply(EntityChange.Upsert(Entity("ok"), V(1)), bad));
        Assert.False(error.IsTransient);
        Assert.Contains("dimension 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("4", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await Store.CountAsync(Items, CancellationToken.None));
    }

    [Fact]
    public async Task An_upsert_without_a_vector_removes_the_stored_vector()
    {
        await Apply(EntityChange.Upsert(Entity("x", vector: [1, 0, 0, 0]), V(1)));
        await Apply(EntityChange.Upsert(new SyncEntity(new EntityKey(Items, "x"), Encoding.UTF8.GetBytes("{}")), V(2)));
        Assert.Null(await DigestOf(new EntityKey(Items, "x")));
        Assert.Empty(await Vectors.SearchAsync(Items, new float[] { 1, 0, 0, 0 }, 5, CancellationToken.None));
    }
}

/// <summary>Conformance for graph stores: the shared suite plus edges, placeholders and detach on delete.</summary>
public abstract class GraphStoreConformanceTests : StoreConformanceTests
{
    private IGraphStore Graph => (IGraphStore)Store;

    [Fact]
    public async Task Edges_are_traversable_both_ways_and_targets_may_not_exist_yet()
    {
        var a = Entity("a", edges: [new SyncEdge("KNOWS", new EntityKey(Items, "b")), new SyncEdge("LIKES", new EntityKey(Items, "c"))]);
        await Apply(EntityChange.Upsert(a, V(1)));

        var outgoing = await Graph.GetNeighborsAsync(a.Key, null, EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal([("b", "KNOWS", false), ("c", "LIKES", false)], outgoing.Select(n => (n.Key.Id, n.EdgeType, n.Exists)).Order().ToArray());

        await Apply(EntityChange.Upsert(Entity("b", edges: []), V(2)));
        var knows = await Graph.GetNeighborsAsync(a.Key, "KNOWS", EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal([("b", true)], knows.Select(n => (n.Key.Id, n.Exists)).ToArray());

        var incoming = await Graph.GetNeighborsAsync(new EntityKey(Items, "b"), null, EdgeDirection.Incoming, CancellationToken.None);
        Assert.Equal([("a", "KNOWS")], incoming.Select(n => (n.Key.Id, n.EdgeType)).ToArray());
    }

    [Fact]
    public async Task Deleting_a_node_removes_its_edges()
    {
        var a = Entity("a", edges: [new SyncEdge("KNOWS", new EntityKey(Items, "b"))]);
        await Apply(EntityChange.Upsert(a, V(1)), EntityChange.Upsert(Entity("b", edges: []), V(1)));
        await Apply(EntityChange.Delete(a.Key, V(2)));

        Assert.Empty(await Graph.GetNeighborsAsync(new EntityKey(Items, "b"), null, EdgeDirection.Incoming, CancellationToken.None));
        Assert.Empty(await Graph.GetNeighborsAsync(a.Key, null, EdgeDirection.Both, CancellationToken.None));
    }

    [Fact]
    public async Task Purging_a_tombstone_keeps_the_edges_other_entities_point_at_it_with()
    {
        var a = Entity("a", edges: [new SyncEdge("KNOWS", new EntityKey(Items, "b"))]);
        await Apply(EntityChange.Upsert(a, V(1)), EntityChange.Upsert(Entity("b", edges: []), V(1)));
        var before = await DigestOf(a.Key);
        await Apply(EntityChange.Delete(new EntityKey(Items, "b"), V(2)));

        Assert.Equal(1, await ((ITombstoneStore)Store).PurgeTombstonesAsync(Items, V(5), 10, CancellationToken.None));

        // a's edge belongs to a: it stays, to a target that no longer exists, and a's digest is unchanged.
        Assert.Equal(before, await DigestOf(a.Key));
        var outgoing = await Graph.GetNeighborsAsync(a.Key, null, EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal([("b", "KNOWS", false)], outgoing.Select(n => (n.Key.Id, n.EdgeType, n.Exists)).ToArray());
        Assert.Equal(1, await Store.CountAsync(Items, CancellationToken.None));
        Assert.Equal(0, await ((ITombstoneStore)Store).PurgeTombstonesAsync(Items, V(5), 10, CancellationToken.None));

        // The key is free again: an older change is applied.
        await Apply(EntityChange.Upsert(Entity("b", edges: []), V(1)));
        Assert.Equal(V(1), (await DigestOf(new EntityKey(Items, "b")))?.Version);
    }

    [Fact]
    public async Task Replacing_an_entity_replaces_its_edges()
    {
        await Apply(EntityChange.Upsert(Entity("a", edges: [new SyncEdge("OLD", new EntityKey(Items, "b"))]), V(1)));
        await Apply(EntityChange.Upsert(Entity("a", edges: [new SyncEdge("NEW", new EntityKey(Items, "c"))]), V(2)));
        var outgoing = await Graph.GetNeighborsAsync(new EntityKey(Items, "a"), null, EdgeDirection.Outgoing, CancellationToken.None);
        Assert.Equal(["NEW"], outgoing.Select(n => n.EdgeType).ToArray());
    }
}
