using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Neo4j.Internal;

/// <summary>The Neo4j adapter's log messages, with stable event ids (62xx).</summary>
internal static partial class Neo4jLog
{
    [LoggerMessage(6200, LogLevel.Information, "Neo4j store {Store}: key constraint and bucket index ensured for label {Label}.")]
    public static partial void SchemaEnsured(ILogger logger, string store, string label);

    [LoggerMessage(6201, LogLevel.Warning, "Neo4j store {Store}: {Operation} failed transiently (attempt {Attempt}); retrying in {Delay}.")]
    public static partial void Retrying(ILogger logger, string store, string operation, int attempt, TimeSpan delay, Exception? exception);

    [LoggerMessage(6202, LogLevel.Debug, "Neo4j store {Store}: {Applied} of {Count} change(s) of {Collection} won the version guard.")]
    public static partial void Applied(ILogger logger, string store, string collection, long applied, int count);
}
