using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering.Protocol;

namespace CrossStoreSync.Peering.Tests;

/// <summary>How the sender cuts and encodes states into chunk bodies, and how the puller decodes them.</summary>
public sealed class StateCodecTests
{
    [Theory]
    [InlineData(1, 4096)]
    [InlineData(2, 16 * 1024)]
    [InlineData(3, 1024 * 1024)]
    public void Chunks_stay_within_their_bound_and_decode_to_the_states_sent_in_order(int seed, int maxBytes)
    {
        var states = RandomStates(new Random(seed), 300);
        var received = new List<ReplicatedState>();
        for (var start = 0; start < states.Count;)
        {
            var end = StateCodec.ChunkEnd(states, start, maxBytes, out var bytes);
            Assert.True(end > start, "a chunk holds at least one state");
            Assert.True(bytes <= maxBytes || end == start + 1, $"a chunk of {end - start} states is {bytes} bytes, over the bound of {maxBytes}");
            Assert.True(end == states.Count || bytes + StateCodec.SizeOf(states[end]) > maxBytes, "a chunk ends only when the next state does not fit");

            // Encoded into a larger (pooled-like) buffer: only the declared bytes are the body.
            var buffer = new byte[bytes + 64];
            Array.Fill(buffer, (byte)0xAB);
            StateCodec.EncodeStates(states, start, end - start, buffer.AsSpan(0, bytes));
            received.AddRange(StateCodec.DecodeStates(buffer.AsSpan(0, bytes), end - start));
            start = end;
        }

        Assert.Equal(states.Count, received.Count);
        for (var i = 0; i < states.Count; i++)
        {
            var (sent, got) = (states[i], received[i]);
            Assert.Equal(sent.Lsn, got.Lsn);
            Assert.Equal(sent.Change.Key, got.Change.Key);
            Assert.Equal(sent.Change.Kind, got.Change.Kind);
            Assert.Equal(sent.Change.Version, got.Change.Version);
            Assert.Equal(sent.Change.ContentHash, got.Change.ContentHash);
            Assert.Equal(sent.History, got.History);
            if (sent.Change.Entity is { } entity)
            {
                Assert.Equal(entity.Vector.ToArray(), got.Change.Entity!.Vector.ToArray());
                Assert.Equal(EntityEncodingOf(entity), EntityEncodingOf(got.Change.Entity!));
            }
        }
    }

    [Fact]
    public void A_destination_that_does_not_match_the_states_sizes_is_refused()
    {
        var states = RandomStates(new Random(7), 3);
        var size = states.Sum(StateCodec.SizeOf);
        var ex = Assert.Throws<InvalidOperationException>(() => StateCodec.EncodeStates(states, 0, states.Count, new byte[size + 1]));
        Assert.Contains($"{size}", ex.Message, StringComparison.Ordinal);
    }

    private static byte[] EntityEncodingOf(SyncEntity entity)
    {
        var bytes = new byte[Hashing.EntityEncoding.GetEncodedLength(entity)];
        Hashing.EntityEncoding.Encode(entity, bytes);
        return bytes;
    }

    private static List<ReplicatedState> RandomStates(Random random, int count)
    {
        var states = new List<ReplicatedState>(count);
        for (var i = 0; i < count; i++)
        {
            var version = new HlcTimestamp(1_700_000_000_000 + i, random.Next(0, 100), random.Next(1, 6));
            var history = VersionVector.Of(version).With(new HlcTimestamp(1_600_000_000_000 + i, 0, version.NodeId == 1 ? 2 : 1));
            var key = new EntityKey(random.Next(2) == 0 ? "notes" : "topics", $"k{i}-{new string('é', random.Next(0, 40))}");
            EntityChange change;
            if (random.Next(5) == 0)
            {
                change = EntityChange.Delete(key, version);
            }
            else
            {
                var text = new string((char)('a' + random.Next(26)), random.Next(1, 6000));
                var vector = Enumerable.Range(0, random.Next(0, 400)).Select(_ => random.NextSingle()).ToArray();
                var edges = Enumerable.Range(0, random.Next(0, 4)).Select(e => new SyncEdge("LINKS", new EntityKey("notes", "n" + e))).ToArray();
                change = EntityChange.Upsert(SyncEntity.FromJson(key, $$"""{"text":"{{text}}"}""", vector, edges), version);
            }

            states.Add(new ReplicatedState(i + 1, change, history));
        }

        return states;
    }
}
