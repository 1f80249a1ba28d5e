using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class ConcurrentWriterTests
{
    [Fact]
    public async Task Concurrent_writers_to_the_same_keys_leave_every_store_at_the_sources_newest_version()
    {
        const int Writers = 8;
        const int WritesPerWriter = 200;
        const int Keys = 20;
        await using var engine = await TestEngine.StartAsync(o => o.DispatchBatchSize = 32);

        // A few transient replica failures on top, so batches are retried while writers keep appending.
        engine.VectorFaults.FailCall(3).FailCall(10).FailCall(11);
        engine.GraphFaults.FailCall(5);

        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            var issued = new List<(EntityKey Key, SyncTicket Ticket)>(WritesPerWriter);
            for (var i = 0; i < WritesPerWriter; i++)
            {
                var id = $"k{((w * 7) + i) % Keys}";
                issued.Add((Items.Key(id), await engine.Manager.WriteAsync(Items.Entity(id, (w * 1000) + i))));
            }

            return issued;
        })).ToArray();
        var all = (await Task.WhenAll(writers).WaitAsync(TestEngine.Timeout)).SelectMany(x => x).ToArray();

        Assert.Equal(Writers * WritesPerWriter, all.Length);
        Assert.Equal(all.Length, all.Select(x => x.Ticket.Version).Distinct().Count());
        Assert.Equal(all.Length, all.Select(x => x.Ticket.Lsns.First).Distinct().Count());

        foreach (var writer in writers)
        {
            var lastOfWriter = (await writer)[^1].Ticket;
            Assert.Equal(SyncWaitOutcome.Synced, await engine.Manager.WaitForSyncAsync(lastOfWriter, TestEngine.Timeout));
        }

        var newest = all.GroupBy(x => x.Key).ToDictionary(g => g.Key, g => g.Max(x => x.Ticket.Version));
        Assert.Equal(Keys, newest.Count);
        foreach (var (key, version) in newest)
        {
            var source = await engine.Source.ReadAsync(key, CancellationToken.None);
            Assert.True(source!.Version == version, $"The source holds {key} at {source.Version}; the newest write was {version}.");
            await engine.AssertReplicasMatchSourceAsync(key);
        }
    }
}
