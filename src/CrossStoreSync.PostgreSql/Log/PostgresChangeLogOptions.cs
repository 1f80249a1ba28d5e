using CrossStoreSync.Errors;

using System.Text.RegularExpressions;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>Options of <see cref="PostgresChangeLog"/>.</summary>
public sealed partial class PostgresChangeLogOptions
{
    /// <summary>The schema of the log's tables (created if missing). <value>Default <c>crossstoresync</c>.</value></summary>
    public string Schema { get; set; } = PostgresNames.DefaultSchema;

    /// <summary>
    /// The number of key partitions that dispatch workers share (1..1024). Fixed when the log is created: a log created
    /// with another count keeps its own, and start-up fails with both values. More partitions spread the work over more
    /// workers; each worker reads all the partitions it holds in one query. <value>Default 16.</value>
    /// </summary>
    public int Partitions { get; set; } = 16;

    /// <summary>Checks the options, naming the first bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Schema) || !IdentifierPattern().IsMatch(Schema))
        {
            throw new ArgumentException($"PostgresChangeLogOptions.Schema is {SafeText.Quote(Schema)}; use 1..63 lower-case letters, digits and '_', starting with a letter or '_'.", nameof(Schema));
        }

        if (Partitions is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(Partitions), Partitions, $"PostgresChangeLogOptions.Partitions is {Partitions}; it must be in 1..1024.");
        }
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdentifierPattern();
}
