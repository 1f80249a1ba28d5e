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
}
