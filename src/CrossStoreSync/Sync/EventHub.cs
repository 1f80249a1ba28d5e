using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CrossStoreSync.Sync;

/// <summary>Fans engine events out to subscribers, each with its own bounded buffer that drops the oldest events.</summary>
internal sealed class EventHub(int capacity)
{
    private readonly Lock _gate = new();
    private Channel<SyncEvent>[] _subscribers = [];

    public bool HasSubscribers => Volatile.Read(ref _subscribers).Length > 0;

    public void Publish(SyncEvent syncEvent)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber.Writer.TryWrite(syncEvent);
        }
    }

    /// <summary>Registers at once (not on first enumeration), so events published right after the call are seen.</summary>
    public IAsyncEnumerable<SyncEvent> Subscribe(CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<SyncEvent>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = false,
        });
        lock (_gate)
        {
            _subscribers = [.. _subscribers, channel];
        }

        return ReadAsync(channel, cancellationToken);
    }

    private async IAsyncEnumerable<SyncEvent> ReadAsync(Channel<SyncEvent> channel, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return item;
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscribers = Array.FindAll(_subscribers, c => c != channel);
            }
        }
    }
}
