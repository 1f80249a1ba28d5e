using CrossStoreSync.Errors;
using CrossStoreSync.Model;

namespace CrossStoreSync.Neo4j;

/// <summary>Neo4j answered a query with an error. Carries the HTTP status and Neo4j's status code and message.</summary>
public sealed class Neo4jException : SyncStoreException
{
    /// <summary>Creates the exception.</summary>
    public Neo4jException(string message, bool isTransient, int? statusCode, string? code, string? serverMessage, string store, EntityKey? key, string operation, Exception? innerException = null)
        : base(message, isTransient, store, key, operation, innerException)
    {
        StatusCode = statusCode;
        Code = code;
        ServerMessage = serverMessage;
    }

    /// <summary>The HTTP status code, or null when no response arrived (timeout, connection refused).</summary>
    public int? StatusCode { get; }

    /// <summary>Neo4j's status code, for example <c>Neo.TransientError.Transaction.DeadlockDetected</c>, when it sent one.</summary>
    public string? Code { get; }

    /// <summary>Neo4j's error message.</summary>
    public string? ServerMessage { get; }
}
