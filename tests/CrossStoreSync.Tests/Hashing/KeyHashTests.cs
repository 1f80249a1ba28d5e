using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using FsCheck;
using FsCheck.Fluent;

namespace CrossStoreSync.Tests.Hashing;

public sealed class KeyHashTests
{
    // Pinned values: XXH64 (seed 0) of "collection\0id" as UTF-8, computed once with the reference C library
    // (libxxhash 0.8.1). Buckets are persisted in every store, so these must never change.
    [Theory]
    [InlineData("items", "a1", 0x0FBB6C6158BEE703UL)]
    [InlineData("docs", "ключ-é😀", 0x274920E69DB0E584UL)]
    public void Key_hash_is_pinned_across_processes_and_versions(string collection, string id, ulong expected)
    {
        Assert.Equal(expected, KeyHash.Compute(new EntityKey(collection, id)));
        Assert.Equal(expected, KeyHash.Compute(collection, id));
    }

    [Fact]
    public void Bucket_is_the_top_32_bits_of_the_pinned_hash()
    {
        Assert.Equal(0x0FBB6C61u, KeyHash.Bucket(new EntityKey("items", "a1")));
    }

    [Fact]
    public void Key_longer_than_the_stack_buffer_hashes_like_its_bytes()
    {
        var collection = "C" + new string('c', 63);
        var id = new string('x', 500);

        Assert.Equal(0xDE9760E8F82A82E5UL, KeyHash.Compute(new EntityKey(collection, id)));
    }

    [Fact]
    public void Separator_keeps_collection_and_id_boundaries_apart()
    {
        Assert.Equal(0x94CB73913641550DUL, KeyHash.Compute("ab", "c"));
        Assert.Equal(0x3293BDC2CFB086A7UL, KeyHash.Compute("a", "bc"));
    }

    [Fact]
    public void Same_key_gives_the_same_hash_and_hash_is_xxh64_of_collection_zero_id()
    {
        var parts = new[] { "a", "Z", "0", "-", " ", "é", "€", "ж", "😀", "/" };
        var keys = Arb.From(
            Gen.Elements("items", "Docs", "x", "a_1")
                .SelectMany(
                    _ => Gen.Choose(1, 40).SelectMany(n => Gen.ArrayOf(Gen.Elements(parts), n)),
                    (collection, idParts) => (Collection: collection, Id: string.Concat(idParts))));

        Prop.ForAll(keys, k =>
        {
            var key = new EntityKey(k.Collection, k.Id);
            var copy = new EntityKey(new string(k.Collection.AsSpan()), string.Concat(k.Id.AsSpan(0, 1), k.Id.AsSpan(1)));
            var bytes = Encoding.UTF8.GetBytes(k.Collection + "\0" + k.Id);

            Assert.Equal(KeyHash.Compute(key), KeyHash.Compute(copy));
            Assert.Equal(XxHash64.Hash(bytes), KeyHash.Compute(key));
            Assert.Equal((uint)(XxHash64.Hash(bytes) >> 32), KeyHash.Bucket(key));
        }).QuickCheckThrowOnFailure();
    }
}
