using CrossStoreSync.Errors;

using Npgsql;

namespace CrossStoreSync.PostgreSql;

/// <summary>Options of <c>UsePostgreSql</c>: where the change log (and the document store) live.</summary>
public sealed class PostgreSqlSyncOptions
{
    /// <summary>The Npgsql connection string. Required. Credentials in it are never logged.</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The schema of the library's tables. <value>Default <c>crossstoresync</c>.</value></summary>
    public string Schema { get; set; } = PostgresNames.DefaultSchema;

    /// <summary>The name of the PostgreSQL document store (cursors and dead letters are keyed by it). <value>Default <c>documents</c>.</value></summary>
    public string DocumentStoreName { get; set; } = "documents";

    /// <summary>Key partitions shared by dispatch workers (see <see cref="Log.PostgresChangeLogOptions.Partitions"/>). <value>Default 16.</value></summary>
    public int Partitions { get; set; } = 16;

    /// <summary>Checks the options, naming the first bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("PostgreSqlSyncOptions.ConnectionString is empty; set it to an Npgsql connection string (Host=...;Database=...;Username=...).", nameof(ConnectionString));
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(ConnectionString);
        }
        catch (ArgumentException ex)
        {
            // The message of a malformed connection string may quote it, password included: do not repeat it.
            throw new ArgumentException($"PostgreSqlSyncOptions.ConnectionString is not a valid Npgsql connection string: {ex.GetType().Name}.", nameof(ConnectionString));
        }

        if (string.IsNullOrWhiteSpace(DocumentStoreName))
        {
            throw new ArgumentException($"PostgreSqlSyncOptions.DocumentStoreName is {SafeText.Quote(DocumentStoreName)}; give the document store a non-blank name.", nameof(DocumentStoreName));
        }

        new Log.PostgresChangeLogOptions { Schema = Schema, Partitions = Partitions }.Validate();
    }
}
