using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Sync;

public sealed class KeyLocksTests
{
    [Fact]
    public async Task Second_holder_of_a_key_waits_for_the_first_and_other_keys_do_not()
    {
        var locks = new KeyLocks();
        var first = await locks.AcquireAsync(Items.Key("a"), CancellationToken.None);
        var waiting = locks.AcquireAsync(Items.Key("a"), CancellationToken.None).AsTask();
        using (await locks.AcquireAsync(Items.Key("b"), CancellationToken.None))
        {
            Assert.False(waiting.IsCompleted);
        }

        first.Dispose();
        (await waiting.WaitAsync(TestEngine.Timeout)).Dispose();
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task Batches_sharing_keys_in_opposite_orders_do_not_deadlock()
    {
        var locks = new KeyLocks();
        EntityChange[] forward = [.. Enumerable.Range(0, 50).Select(i => EntityChange.Delete(Items.Key($"k{i}"), HlcTimestamp.Zero))];
        EntityChange[] backward = [.. forward.Reverse()];
        var tasks = Enumerable.Range(0, 8).Select(n => Task.Run(async () =>
        {
            for (var round = 0; round < 50; round++)
            {
                using var held = await locks.AcquireAsync(n % 2 == 0 ? forward : backward, CancellationToken.None);
            }
        }));

        await Task.WhenAll(tasks).WaitAsync(TestEngine.Timeout);
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task Cancelled_wait_leaves_no_entry_behind()
    {
        var locks = new KeyLocks();
        var held = await locks.AcquireAsync(Items.Key("a"), CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var waiting = locks.AcquireAsync(Items.Key("a"), cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        Assert.Equal(0, locks.Count);
    }
}
