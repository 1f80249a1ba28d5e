using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using Grpc.Core;

namespace CrossStoreSync.Qdrant;

/// <summary>
/// Qdrant failed a call: it answered with a gRPC error status, could not be reached, or did not answer in time.
/// Carries the store, the Qdrant collection, the gRPC status and Qdrant's own message; <see cref="SyncStoreException.IsTransient"/>
/// says whether retrying can help, and <see cref="SyncStoreException.RetryAfter"/> how long the server asked to wait (the
/// <c>retry-after</c> metadata of a ResourceExhausted status, in whole seconds, capped at
/// <see cref="QdrantVectorStoreOptions.MaxRetryAfter"/>). The store's own retries wait that long; a dispatcher honours it too.
/// </summary>
public sealed class QdrantException : SyncStoreException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The full message.</param>
    /// <param name="isTransient">True when retrying can help.</param>
    /// <param name="statusCode">The gRPC status, or null when the call never got one (a timeout of the store's own).</param>
    /// <param name="serverMessage">The status detail Qdrant (or the transport) gave.</param>
    /// <param name="store">The store's name.</param>
    /// <param name="collection">The Qdrant collection involved, if one.</param>
    /// <param name="key">The entity involved, if one.</param>
    /// <param name="operation">The store operation (for example <c>apply</c>, <c>scan digests</c>).</param>
    /// <param name="innerException">The cause.</param>
    public QdrantException(string message, bool isTransient, StatusCode? statusCode, string? serverMessage, string store, string? collection, EntityKey? key, string operation, Exception? innerException = null)
        : base(message, isTransient, store, key, operation, innerException)
    {
        StatusCode = statusCode;
        ServerMessage = serverMessage;
        Collection = collection;
    }

    /// <summary>The gRPC status code, or null when no status arrived (the store's own per-call timeout).</summary>
    public StatusCode? StatusCode { get; }

    /// <summary>Qdrant's error text (the status detail), for example <c>Not found: Collection `items` doesn't exist!</c>.</summary>
    public string? ServerMessage { get; }

    /// <summary>The Qdrant collection the call was about, or null for server-wide calls (the health check).</summary>
    public string? Collection { get; }
}
