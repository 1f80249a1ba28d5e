using CrossStoreSync.Errors;

using System.Net.Sockets;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Internal;

/// <summary>
/// SQL helpers shared by the PostgreSQL components: identifier validation and quoting (identifiers are the only thing
/// ever written into SQL text; every value is a parameter), the advisory lock that serialises DDL, and the SQLSTATE
/// classification that decides whether a failure is worth retrying.
/// </summary>
internal static class PostgresSql
{
    /// <summary>The longest identifier PostgreSQL keeps (NAMEDATALEN - 1); longer names are silently truncated by the server.</summary>
    public const int MaxIdentifierLength = 63;

    /// <summary>
    /// The key of the transaction-level advisory lock taken before the library creates schemas, tables or indexes.
    /// Concurrent <c>CREATE ... IF NOT EXISTS</c> of the same object in several sessions can fail with a unique
    /// violation on the system catalogs (pg_type, pg_namespace); holding one lock for all DDL makes them take turns.
    /// Every PostgreSQL component of the library uses this key ("CSSYNC" followed by 0x0001).
    /// </summary>
    public const long SchemaLockKey = 0x4353_5359_4E43_0001;

    /// <summary>SQLSTATE <c>undefined_table</c>: the relation does not exist.</summary>
    public const string UndefinedTable = "42P01";

    /// <summary>
    /// True for a plain identifier the library will accept as a schema name: an ASCII letter or underscore, then
    /// letters, digits or underscores, at most <see cref="MaxIdentifierLength"/> characters.
    /// </summary>
    public static bool IsValidIdentifier(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > MaxIdentifierLength || !(char.IsAsciiLetter(value[0]) || value[0] == '_'))
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="paramName"/> and the value when it is not a valid identifier.</summary>
    public static void ValidateIdentifier(string? value, string paramName)
    {
        if (!IsValidIdentifier(value))
        {
            throw new ArgumentException(
                $"{SafeText.Quote(value)} is not a valid PostgreSQL identifier for {paramName}: it must start with a letter or '_', contain only ASCII letters, digits and '_', and be at most {MaxIdentifierLength} characters.",
                paramName);
        }
    }

    /// <summary>
    /// Quotes an identifier for SQL text. Callers pass only validated identifiers, so the doubling of embedded quotes
    /// never happens in practice; it is kept so that quoting alone is always safe.
    /// </summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A schema-qualified, quoted name.</summary>
    public static string Qualify(string schema, string name) => Quote(schema) + "." + Quote(name);

    /// <summary>
    /// Whether a failure is worth retrying: serialization failures, deadlocks, lost or refused connections, the server
    /// running out of resources or shutting down, timeouts; and whatever Npgsql itself marks transient (I/O errors).
    /// Constraint violations, bad data and missing privileges are permanent.
    /// </summary>
    public static bool IsTransient(Exception exception)
    {
        switch (exception)
        {
            case PostgresException pg:
                return IsTransientSqlState(pg.SqlState) || pg.IsTransient;
            case NpgsqlException npgsql:
                return npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException;
            case IOException or SocketException or TimeoutException:
                return true;
            default:
                return false;
        }
    }

    /// <summary>The SQLSTATE part of <see cref="IsTransient"/>.</summary>
    public static bool IsTransientSqlState(string? sqlState)
    {
        if (string.IsNullOrEmpty(sqlState) || sqlState.Length != 5)
        {
            return false;
        }

        return sqlState switch
        {
            "40001" => true, // serialization_failure
            "40P01" => true, // deadlock_detected
            "55P03" => true, // lock_not_available (lock_timeout)
            "57014" => true, // query_canceled (statement_timeout; caller cancellation surfaces as OperationCanceledException)
            "57P01" or "57P02" or "57P03" => true, // admin_shutdown, crash_shutdown, cannot_connect_now
            _ => sqlState.StartsWith("08", StringComparison.Ordinal) // connection_exception class
                || sqlState.StartsWith("53", StringComparison.Ordinal), // insufficient_resources class (disk full, out of memory, too many connections)
        };
    }
}
