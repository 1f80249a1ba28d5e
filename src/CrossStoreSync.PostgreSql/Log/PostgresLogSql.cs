using Npgsql;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>SQL helpers of the change log.</summary>
internal static class PostgresLogSql
{
    /// <summary>Quotes an identifier already checked against a strict pattern.</summary>
    public static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Whether retrying may succeed: connection failures, serialization failures, deadlocks, lack of resources, shutdowns.</summary>
    public static bool IsTransient(NpgsqlException exception) =>
        exception.IsTransient
        || (exception is PostgresException pg && (pg.SqlState is "40001" or "40P01" or "55P03" or "57P01" or "57P02" or "57P03" || pg.SqlState.StartsWith("53", StringComparison.Ordinal) || pg.SqlState.StartsWith("08", StringComparison.Ordinal)));
}
