using CrossStoreSync.Errors;
using CrossStoreSync.Model;

namespace CrossStoreSync.Qdrant;

/// <summary>Qdrant answered a request with an error. Carries the HTTP status and Qdrant's own message.</summary>
public sealed class QdrantException : SyncStoreException
{
    /// <summary>Creates the exception.</summary>
    public QdrantException(string message, bool isTransient, int? statusCode, string? serverMessage, string store, EntityKey? key, string operation, Exception? innerException = null)
        : base(message, isTransient, store, key, operation, innerException)
    {
        StatusCode = statusCode;
        ServerMessage = serverMessage;
    }

    /// <summary>The HTTP status code, or null when no response arrived (timeout, connection refused).</summary>
    public int? StatusCode { get; }

    /// <summary>Qdrant's error text: <c>status.error</c> of the JSON envelope, or the plain-text body of a 401/403.</summary>
    public string? ServerMessage { get; }

    /// <summary>How long the server asked to wait (<c>Retry-After</c> of a 429 or 503), if it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
