using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>The Qdrant adapter's log messages, with stable event ids (61xx).</summary>
internal static partial class QdrantLog
{
    [LoggerMessage(6100, LogLevel.Information, "Qdrant store {Store}: created collection {Collection} (vector {VectorName}, size {Size}, distance {Distance}).")]
    public static partial void CollectionCreated(ILogger logger, string store, string collection, string vectorName, int size, string distance);

    [LoggerMessage(6101, LogLevel.Warning, "Qdrant store {Store}: {Operation} failed transiently (attempt {Attempt}); retrying in {Delay}.")]
    public static partial void Retrying(ILogger logger, string store, string operation, int attempt, TimeSpan delay, Exception? exception);

    [LoggerMessage(6102, LogLevel.Debug, "Qdrant store {Store}: {Skipped} change(s) of {Collection} not newer than the stored version were skipped.")]
    public static partial void StaleSkipped(ILogger logger, string store, string collection, int skipped);

    [LoggerMessage(6103, LogLevel.Debug, "Qdrant store {Store}: {Count} point(s) of {Collection} changed between read and write; re-checking (round {Round}).")]
    public static partial void GuardConflict(ILogger logger, string store, string collection, int count, int round);

    [LoggerMessage(6104, LogLevel.Information, "Qdrant store {Store}: server version {Version}.")]
    public static partial void ServerVersion(ILogger logger, string store, string version);
}
