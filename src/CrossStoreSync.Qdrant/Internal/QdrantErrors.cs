using CrossStoreSync.Errors;

using System.Globalization;
using CrossStoreSync.Model;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// Maps what a Qdrant.Client call throws to a <see cref="QdrantException"/>. Qdrant answers errors with gRPC status
/// codes (its <c>StorageError</c> → <c>tonic::Status</c> conversion): InvalidArgument for bad input, NotFound for a
/// missing collection, AlreadyExists, FailedPrecondition for a locked storage, PermissionDenied/Unauthenticated from
/// the API-key check, DeadlineExceeded for its own timeouts, Unavailable for a shard that is down, ResourceExhausted
/// with <c>retry-after</c> metadata (whole seconds) for rate limits, Internal for its own failures.
/// </summary>
internal static class QdrantErrors
{
    private const string RetryAfterKey = "retry-after";

    public static Exception Map(Exception exception, QdrantVectorStoreOptions options, string? collection, EntityKey? key, string operation, CancellationToken cancellationToken)
    {
        var store = options.StoreName;
        switch (exception)
        {
            case RpcException { StatusCode: StatusCode.Cancelled } when cancellationToken.IsCancellationRequested:
                // Grpc.Net.Client reports a cancelled token as a Cancelled status; the caller (or the store's own
                // timeout) must see a cancellation, not a server error.
                return new OperationCanceledException($"Qdrant store {SafeText.Quote(store)}: {operation} was cancelled.", exception, cancellationToken);

            case RpcException rpc:
            {
                var code = rpc.StatusCode;

                // A TLS handshake that fails on the certificate comes as Internal or Unavailable with the transport's
                // exception, like a dropped connection; retrying cannot fix it, so it is permanent.
                var certificate = IsCertificateFailure(rpc);
                var transient = !certificate && IsTransient(rpc);
                var detail = rpc.Status.Detail;
                var retryAfter = code == StatusCode.ResourceExhausted ? RetryAfter(rpc.Trailers, options.MaxRetryAfter) : null;
                var explanation = certificate ? "could not be reached over TLS: its certificate was refused (check CertificateThumbprint or the trust store)" : Explain(code, transient);
                var message = $"Qdrant store {SafeText.Quote(store)}: {operation}{Of(collection)} failed with {code}; Qdrant {explanation}: {SafeText.Text(detail)}";
                return new QdrantException(message, transient, code, detail, store, collection, key, operation, exception) { RetryAfter = retryAfter };
            }

            case global::Qdrant.Client.QdrantException client:
                // Raised by Qdrant.Client itself for an answer that says "not done" (for example a collection not created).
                return new QdrantException($"Qdrant store {SafeText.Quote(store)}: {operation}{Of(collection)} failed: {SafeText.Text(client.Message)}", false, null, client.Message, store, collection, key, operation, exception);

            default:
                return new QdrantException($"Qdrant store {SafeText.Quote(store)}: {operation}{Of(collection)} failed: {SafeText.Text(exception.Message)}", false, null, null, store, collection, key, operation, exception);
        }
    }

    /// <summary>" of collection 'x'" or nothing.</summary>
    public static string Of(string? collection) => collection is null ? string.Empty : $" of collection {SafeText.Quote(collection)}";

    private static bool IsTransient(RpcException rpc) => rpc.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted or StatusCode.Aborted => true,

        // Grpc.Net.Client reports a stream the connection dropped (reset, closed mid-answer) as Internal or Unknown
        // with the transport's exception attached; the same codes sent by Qdrant itself carry none and are its own
        // failures, which retrying does not fix.
        StatusCode.Internal or StatusCode.Unknown => rpc.Status.DebugException is not null,

        // Cancelled without the caller asking: a proxy or the server gave up on the call.
        StatusCode.Cancelled => true,
        _ => false,
    };

    private static bool IsCertificateFailure(RpcException rpc)
    {
        for (var e = rpc.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }

    private static string Explain(StatusCode code, bool transient) => code switch
    {
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => "refused the credentials (check ApiKey or the client's api-key)",
        StatusCode.NotFound => "reports something missing (a collection deleted outside the library?)",
        StatusCode.ResourceExhausted => "is rate-limiting or out of resources",
        StatusCode.Internal or StatusCode.Unknown when transient => "dropped the connection",
        _ when transient => "is busy or unavailable",
        _ => "rejected the call",
    };

    private static TimeSpan? RetryAfter(Metadata trailers, TimeSpan max)
    {
        var text = trailers.GetValue(RetryAfterKey);
        if (text is null || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || double.IsNaN(seconds))
        {
            return null;
        }

        // A negative value means "now"; a very long wait is capped so one call does not hang, and the engine keeps retrying.
        return seconds <= 0 ? TimeSpan.Zero : seconds >= max.TotalSeconds ? max : TimeSpan.FromSeconds(seconds);
    }
}
