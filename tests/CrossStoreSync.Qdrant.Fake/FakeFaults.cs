using System.Collections.Concurrent;
using System.Globalization;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>
/// TEST CODE — scripted faults of <see cref="FakeQdrantServer"/>: each queued fault answers one call instead of the
/// fake's normal handling, with what a real Qdrant (or the network in front of it) would produce.
/// </summary>
public sealed class FakeFaults
{
    private readonly ConcurrentQueue<Func<ServerCallContext, Task>> _queue = new();
    private volatile bool _down;

    /// <summary>While true, every call's HTTP/2 stream is reset without an answer, as by a server or proxy that drops connections.</summary>
    public bool Down { get => _down; set => _down = value; }

    /// <summary>
    /// The next <paramref name="count"/> calls fail with <paramref name="code"/> and Qdrant's message for it; with
    /// <paramref name="retryAfter"/>, the status carries Qdrant's <c>retry-after</c> metadata (whole seconds, rounded up).
    /// </summary>
    public void Status(StatusCode code, int count = 1, TimeSpan? retryAfter = null)
    {
        for (var i = 0; i < count; i++)
        {
            _queue.Enqueue(_ =>
            {
                var trailers = new Metadata();
                if (retryAfter is { } wait)
                {
                    trailers.Add("retry-after", ((int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
                }

                throw new RpcException(new Grpc.Core.Status(code, MessageOf(code)), trailers);
            });
        }
    }

    /// <summary>The next <paramref name="count"/> calls have their HTTP/2 stream reset mid-call (a dropped stream).</summary>
    public void DropStream(int count = 1)
    {
        for (var i = 0; i < count; i++)
        {
            _queue.Enqueue(Drop);
        }
    }

    /// <summary>The next call is answered only after <paramref name="delay"/> (a hung server, for client timeouts), then with Unavailable.</summary>
    public void Slow(TimeSpan delay) => _queue.Enqueue(async context =>
    {
        try
        {
            await Task.Delay(delay, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The client gave up; nothing reads the answer any more.
        }

        throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, MessageOf(StatusCode.Unavailable)));
    });

    internal async Task ApplyAsync(ServerCallContext context)
    {
        if (_down)
        {
            await Drop(context);
        }

        if (_queue.TryDequeue(out var fault))
        {
            await fault(context);
        }
    }

    private static Task Drop(ServerCallContext context)
    {
        context.GetHttpContext().Abort();
        throw new RpcException(new Grpc.Core.Status(StatusCode.Cancelled, "The fake dropped the stream."));
    }

    /// <summary>Qdrant's texts for the statuses its storage errors map to (storage/content_manager/errors.rs).</summary>
    private static string MessageOf(StatusCode code) => code switch
    {
        StatusCode.Unavailable => "Shard temporarily unavailable: No active replica",
        StatusCode.ResourceExhausted => "Rate limiting exceeded: Write rate limit exceeded, retry later",
        StatusCode.DeadlineExceeded => "Timeout: Operation 'update' timed out after 30s",
        StatusCode.Internal => "Service internal error: task panicked",
        StatusCode.FailedPrecondition => "Storage locked: Write operations are forbidden",
        StatusCode.PermissionDenied => "Forbidden: Write access is not allowed",
        StatusCode.InvalidArgument => "Wrong input: bad request",
        _ => $"Fake failure ({code})",
    };
}
