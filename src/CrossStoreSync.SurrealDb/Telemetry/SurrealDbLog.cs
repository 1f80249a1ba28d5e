using Microsoft.Extensions.Logging;

namespace CrossStoreSync.SurrealDb.Telemetry;

/// <summary>The SurrealDB adapter's log messages, with stable event ids (5xxx).</summary>
internal static partial class SurrealDbLog
{
    [LoggerMessage(5000, LogLevel.Warning, "SurrealDB store {Store}: transient failure, retry {Attempt} in {Delay}: {Reason}")]
    public static partial void Retrying(ILogger logger, string store, int attempt, TimeSpan delay, string? reason);

    [LoggerMessage(5001, LogLevel.Information, "SurrealDB store {Store} connected to {Endpoint} ({Version}), namespace {Namespace}, database {Database}.")]
    public static partial void Connected(ILogger logger, string store, Uri endpoint, string version, string @namespace, string database);

    [LoggerMessage(5002, LogLevel.Information, "SurrealDB change feed of {Store}: {Written} change(s) made outside the library written through the engine from table {Table}, up to versionstamp {Versionstamp}.")]
    public static partial void FeedIngested(ILogger logger, string store, int written, string table, long versionstamp);

    [LoggerMessage(5003, LogLevel.Warning, "SurrealDB change feed of {Store}: skipped record {Record} of table {Table}, which cannot be read as an entity: {Reason}")]
    public static partial void FeedSkipped(ILogger logger, string store, string record, string table, string reason);

    [LoggerMessage(5004, LogLevel.Warning, "SurrealDB change feed of {Store} failed; it retries after its poll interval.")]
    public static partial void FeedFailed(ILogger logger, string store, Exception exception);
}
