using System.Net.Sockets;
using CrossStoreSync.Errors;
using Polly.Timeout;

namespace CrossStoreSync.Sync;

/// <summary>Decides whether a store failure is worth retrying.</summary>
internal static class TransientErrors
{
    public static bool IsTransient(Exception exception, CancellationToken cancellationToken) => exception switch
    {
        SyncStoreException store => store.IsTransient,
        TimeoutRejectedException or TimeoutException or HttpRequestException or IOException or SocketException => true,

        // A store's own timeout surfaces as a cancellation the caller did not ask for.
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    public static bool IsCallerCancellation(Exception exception, CancellationToken cancellationToken) =>
        exception is OperationCanceledException && cancellationToken.IsCancellationRequested;

    /// <summary>
    /// The back-off a store asked for (<see cref="SyncStoreException.RetryAfter"/>), looked for on the exception and its
    /// causes (an adapter may wrap the store's own exception); null when there is none.
    /// </summary>
    public static TimeSpan? GetRetryAfter(Exception? exception)
    {
        for (var depth = 0; exception is not null && depth < 8; depth++, exception = exception.InnerException)
        {
            if (exception is SyncStoreException { RetryAfter: { } hint })
            {
                return hint < TimeSpan.Zero ? TimeSpan.Zero : hint;
            }
        }

        return null;
    }
}
