using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Stores;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Hashing;

public sealed class EntityEncodingTests
{
    private static readonly string[] IdParts = ["a", "Z", "0", "-", " ", "é", "€", "ж", "😀", "/", "\""];

    private static readonly Gen<byte[]> BytesGen = Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b));

    private static readonly Gen<EntityKey> KeyGen =
        Gen.Elements("items", "Docs", "x", "a_1").SelectMany(
            _ => Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(Gen.Elements(IdParts), n)),
            (collection, parts) => new EntityKey(collection, string.Concat(parts)));

    // Any finite float, subnormals included; -0.0 is generated too.
    private static readonly Gen<float> FloatGen =
        Gen.Choose(int.MinValue, int.MaxValue).Select(BitConverter.Int32BitsToSingle).Where(float.IsFinite);

    private static readonly Gen<SyncEdge> EdgeGen =
        Gen.Elements("KNOWS", "LINKS_TO", "a1").SelectMany(
            _ => KeyGen.Zip(Gen.OneOf(Gen.Constant(Array.Empty<byte>()), BytesGen)),
            (type, rest) => new SyncEdge(type, rest.Item1, rest.Item2));

    private static readonly Gen<SyncEntity> EntityGen =
        from key in KeyGen
        from document in BytesGen
        from vectorLength in Gen.Choose(0, 8)
        from vector in Gen.ArrayOf(FloatGen, vectorLength)
        from edgeCount in Gen.Choose(0, 5)
        from edges in Gen.ArrayOf(EdgeGen, edgeCount)
        select new SyncEntity(key, document, vector, edges);

    private static readonly Arbitrary<SyncEntity> Entities = Arb.From(EntityGen);

    [Fact]
    public void Decode_of_encode_returns_an_equal_entity()
    {
        Prop.ForAll(Entities, entity =>
        {
            var decoded = EntityEncoding.Decode(EntityEncoding.EncodeToArray(entity));
            AssertEquivalent(entity, decoded);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Encoded_length_is_what_encode_writes()
    {
        Prop.ForAll(Entities, entity =>
        {
            foreach (var sections in new[] { EncodingSections.None, EncodingSections.Document, EncodingSections.Vector, EncodingSections.Edges, EncodingSections.All })
            {
                var length = EntityEncoding.GetEncodedLength(entity, sections);
                var buffer = new byte[length + 16];
                Assert.Equal(length, EntityEncoding.Encode(entity, buffer, sections));
                Assert.Equal(length, EntityEncoding.EncodeToArray(entity, sections).Length);
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Content_hash_does_not_depend_on_edge_order()
    {
        var entityAndShuffle = Arb.From(EntityGen.SelectMany(e => Gen.Shuffle(e.Edges.ToArray()), (e, shuffled) => (Entity: e, Shuffled: shuffled)));
        Prop.ForAll(entityAndShuffle, x =>
        {
            var reordered = new SyncEntity(x.Entity.Key, x.Entity.Document, x.Entity.Vector, x.Shuffled);
            Assert.Equal(EntityEncoding.ComputeContentHash(x.Entity), EntityEncoding.ComputeContentHash(reordered));
            Assert.Equal(EntityEncoding.EncodeToArray(x.Entity), EntityEncoding.EncodeToArray(reordered));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Negative_zero_and_zero_in_a_vector_hash_the_same()
    {
        var key = new EntityKey("items", "z");
        var positive = new SyncEntity(key, "{}"u8.ToArray(), new[] { 0f, 1f, 0f });
        var negative = new SyncEntity(key, "{}"u8.ToArray(), new[] { -0f, 1f, -0f });

        Assert.True(float.IsNegative(negative.Vector.Span[0]));
        Assert.Equal(EntityEncoding.ComputeContentHash(positive), EntityEncoding.ComputeContentHash(negative));
        Assert.Equal(ProjectionHash.Compute(positive, StoreKind.Vector), ProjectionHash.Compute(negative, StoreKind.Vector));
    }

    [Fact]
    public void Entities_with_different_documents_have_different_hashes()
    {
        var pairs = Arb.From(EntityGen.SelectMany(_ => BytesGen, (e, other) => (Entity: e, OtherDocument: other)));
        Prop.ForAll(pairs, x =>
        {
            var changed = new SyncEntity(x.Entity.Key, x.OtherDocument, x.Entity.Vector, x.Entity.Edges);
            var same = x.Entity.Document.Span.SequenceEqual(x.OtherDocument);
            Assert.Equal(same, EntityEncoding.ComputeContentHash(x.Entity) == EntityEncoding.ComputeContentHash(changed));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_changed_vector_component_edge_or_key_changes_the_content_hash()
    {
        var key = new EntityKey("items", "k");
        var edge = new SyncEdge("KNOWS", new EntityKey("items", "other"), "{\"w\":1}"u8.ToArray());
        var baseline = new SyncEntity(key, "{\"a\":1}"u8.ToArray(), new[] { 1f, 2f }, [edge]);
        var variants = new[]
        {
            new SyncEntity(key, baseline.Document, new[] { 1f, 2.0000002f }, [edge]),
            new SyncEntity(key, baseline.Document, new[] { 1f, 2f }, [new SyncEdge("KNOWS", new EntityKey("items", "other"), "{\"w\":2}"u8.ToArray())]),
            new SyncEntity(key, baseline.Document, new[] { 1f, 2f }, [new SyncEdge("LIKES", new EntityKey("items", "other"), edge.Properties)]),
            new SyncEntity(key, baseline.Document, new[] { 1f, 2f }, [new SyncEdge("KNOWS", new EntityKey("items", "another"), edge.Properties)]),
            new SyncEntity(key, baseline.Document, new[] { 1f, 2f }, [edge, edge]),
            new SyncEntity(key, baseline.Document, new[] { 1f, 2f }),
            new SyncEntity(key, baseline.Document, ReadOnlyMemory<float>.Empty, [edge]),
            new SyncEntity(new EntityKey("items", "k2"), baseline.Document, new[] { 1f, 2f }, [edge]),
            new SyncEntity(new EntityKey("other", "k"), baseline.Document, new[] { 1f, 2f }, [edge]),
        };

        var hashes = new HashSet<UInt128> { EntityEncoding.ComputeContentHash(baseline) };
        foreach (var variant in variants)
        {
            Assert.True(hashes.Add(EntityEncoding.ComputeContentHash(variant)), $"Variant {variant.Key} {Encoding.UTF8.GetString(EntityEncoding.EncodeToArray(variant))} collides.");
        }
    }

    [Fact]
    public void Projection_hashes_cover_only_what_each_store_kind_holds()
    {
        var key = new EntityKey("items", "p");
        var edge = new SyncEdge("KNOWS", new EntityKey("items", "q"));
        var entity = new SyncEntity(key, "{\"a\":1}"u8.ToArray(), new[] { 1f, 2f }, [edge]);
        var otherDocument = new SyncEntity(key, "{\"a\":2}"u8.ToArray(), new[] { 1f, 2f }, [edge]);
        var otherVector = new SyncEntity(key, entity.Document, new[] { 1f, 3f }, [edge]);
        var otherEdges = new SyncEntity(key, entity.Document, new[] { 1f, 2f });

        // A vector store does not hold the document or edges, so editing them must not look like drift there.
        Assert.Equal(ProjectionHash.Compute(entity, StoreKind.Vector), ProjectionHash.Compute(otherDocument, StoreKind.Vector));
        Assert.Equal(ProjectionHash.Compute(entity, StoreKind.Vector), ProjectionHash.Compute(otherEdges, StoreKind.Vector));
        Assert.NotEqual(ProjectionHash.Compute(entity, StoreKind.Vector), ProjectionHash.Compute(otherVector, StoreKind.Vector));

        Assert.Equal(ProjectionHash.Compute(entity, StoreKind.Graph), ProjectionHash.Compute(otherDocument, StoreKind.Graph));
        Assert.Equal(ProjectionHash.Compute(entity, StoreKind.Graph), ProjectionHash.Compute(otherVector, StoreKind.Graph));
        Assert.NotEqual(ProjectionHash.Compute(entity, StoreKind.Graph), ProjectionHash.Compute(otherEdges, StoreKind.Graph));

        Assert.Equal(EntityEncoding.ComputeContentHash(entity), ProjectionHash.Compute(entity, StoreKind.Document));
        Assert.NotEqual(ProjectionHash.Compute(entity, StoreKind.Document), ProjectionHash.Compute(otherDocument, StoreKind.Document));
    }

    [Fact]
    public void Large_entity_hashes_the_same_as_its_encoding()
    {
        // Over the stack threshold the hash uses a pooled buffer; the result must not depend on the buffer's size.
        var entity = new SyncEntity(new EntityKey("items", "big"), Encoding.UTF8.GetBytes("{\"t\":\"" + new string('x', 5000) + "\"}"), new float[300]);
        Assert.Equal(Hash128.Hash(EntityEncoding.EncodeToArray(entity)), EntityEncoding.ComputeContentHash(entity));
    }

    [Fact]
    public void Truncated_encoding_fails_with_format_exception()
    {
        var truncations = Arb.From(EntityGen.SelectMany(
            e => Gen.Choose(0, EntityEncoding.GetEncodedLength(e) - 1),
            (e, length) => (Entity: e, Length: length)));
        Prop.ForAll(truncations, x =>
        {
            var bytes = EntityEncoding.EncodeToArray(x.Entity).AsSpan(0, x.Length).ToArray();
            Assert.Throws<FormatException>(() => EntityEncoding.Decode(bytes));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Garbled_encoding_fails_with_format_exception_or_decodes_never_anything_else()
    {
        var garbles = Arb.From(EntityGen.SelectMany(
            e => Gen.ArrayOf(Gen.Choose(0, EntityEncoding.GetEncodedLength(e) - 1).Zip(Gen.Choose(0, 255)), 3),
            (e, edits) => (Entity: e, Edits: edits)));
        Prop.ForAll(garbles, x =>
        {
            var bytes = EntityEncoding.EncodeToArray(x.Entity);
            foreach (var (position, value) in x.Edits)
            {
                bytes[position] = (byte)value;
            }

            try
            {
                EntityEncoding.Decode(bytes);
            }
            catch (FormatException)
            {
            }
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(15, (byte)0x01)] // id "\u0001": a control character
    [InlineData(6, (byte)'1')] // collection "1tems": starts with a digit
    [InlineData(35, (byte)'-')] // edge type "K-OWS": not an identifier
    public void Decoded_invalid_key_or_edge_type_is_a_format_exception(int position, byte value)
    {
        var entity = new SyncEntity(new EntityKey("items", "x"), "{}"u8.ToArray(), edges: [new SyncEdge("KNOWS", new EntityKey("items", "y"))]);
        var bytes = EntityEncoding.EncodeToArray(entity);

        // Layout: format, sections, u32 5 "items", u32 1 "x", u32 2 "{}", u32 0 (vector), u32 1 (edges), u32 5 "KNOWS", ...
        bytes[position] = value;

        Assert.Throws<FormatException>(() => EntityEncoding.Decode(bytes));
    }

    [Fact]
    public void Unknown_format_partial_sections_and_trailing_bytes_are_rejected()
    {
        var entity = new SyncEntity(new EntityKey("items", "x"), "{}"u8.ToArray(), new[] { 1f });
        var full = EntityEncoding.EncodeToArray(entity);

        var wrongFormat = full.ToArray();
        wrongFormat[0] = 2;
        Assert.Contains("format 2", Assert.Throws<FormatException>(() => EntityEncoding.Decode(wrongFormat)).Message, StringComparison.Ordinal);

        Assert.Throws<FormatException>(() => EntityEncoding.Decode(EntityEncoding.EncodeToArray(entity, EncodingSections.Vector)));

        var trailing = full.Concat(new byte[] { 0 }).ToArray();
        Assert.Contains("1 trailing", Assert.Throws<FormatException>(() => EntityEncoding.Decode(trailing)).Message, StringComparison.Ordinal);

        Assert.Throws<FormatException>(() => EntityEncoding.Decode([]));
    }

    private static void AssertEquivalent(SyncEntity expected, SyncEntity actual)
    {
        Assert.Equal(expected.Key, actual.Key);
        Assert.Equal(expected.Document.ToArray(), actual.Document.ToArray());

        // Encoding writes -0.0 as +0.0 (so equal vectors hash equally); everything else round-trips bit for bit.
        Assert.Equal(
            expected.Vector.ToArray().Select(f => BitConverter.SingleToInt32Bits(f + 0f)),
            actual.Vector.ToArray().Select(BitConverter.SingleToInt32Bits));

        static string Describe(SyncEdge e) => $"{e.Type}|{e.Target}|{Convert.ToHexString(e.Properties.Span)}";
        Assert.Equal(
            expected.Edges.Select(Describe).Order(StringComparer.Ordinal),
            actual.Edges.Select(Describe).Order(StringComparer.Ordinal));
    }
}
