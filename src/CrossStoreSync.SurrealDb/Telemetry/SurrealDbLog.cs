using Microsoft.Extensions.Logging;

namespace CrossStoreSync.SurrealDb.Telemetry;

/// <summary>The SurrealDB adapter's log messages, with stable event ids (5xxx).</summary>
internal static partial class SurrealDbLog
{
    [LoggerMessage(5000, LogLevel.Warning, "SurrealDB store {Store}: transient failure, retry {Attempt} in {Delay}: {Reason}")]
    public static partial void Retrying(ILogger logger, string store, int attempt, TimeSpan delay, string? reason);

    [LoggerMessage(5001, LogLevel.Information, "SurrealDB store {Store} connected to {Endpoint} ({Version}), namespace {Namespace}, database {Database}.")]
    public static partial void Connected(ILogger logger, string store, Uri endpoint, string version, string @namespace, string database);
}
