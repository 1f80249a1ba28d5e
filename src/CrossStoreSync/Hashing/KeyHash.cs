using System.Buffers;
using System.Text;
using CrossStoreSync.Model;

namespace CrossStoreSync.Hashing;

/// <summary>
/// The stable 64-bit hash of an <see cref="EntityKey"/>: XXH64 (seed 0) over the UTF-8 bytes of the collection, one
/// 0x00 byte, and the UTF-8 bytes of the id. Its top 32 bits are the key's bucket, recorded as <c>_sync.bucket</c>
/// in every store so consistency checks can read one bucket range at a time.
/// </summary>
public static class KeyHash
{
    private const int StackLimit = 512;

    /// <summary>Computes the key hash.</summary>
    public static ulong Compute(EntityKey key) => Compute(key.Collection, key.Id);

    /// <summary>Computes the key hash from the key's parts.</summary>
    public static ulong Compute(string collection, string id)
    {
        ArgumentNullException.ThrowIfNull(collection);
        ArgumentNullException.ThrowIfNull(id);

        // An upper bound instead of an exact count: one encoding pass per part on the hot path of consistency checks.
        var max = ((collection.Length + id.Length) * 3) + 1;
        byte[]? rented = null;
        var buffer = max <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var written = Encoding.UTF8.GetBytes(collection, buffer);
            buffer[written++] = 0;
            written += Encoding.UTF8.GetBytes(id, buffer[written..]);
            return XxHash64.Hash(buffer[..written]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The key's bucket: the top 32 bits of its hash.</summary>
    public static uint Bucket(EntityKey key) => (uint)(Compute(key) >> 32);
}
