using CrossStoreSync.Errors;

using System.Globalization;
using System.Text.RegularExpressions;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>
/// Options of <see cref="PostgresChangeFeed"/>: where to connect, which replication slot and publication to use, which
/// tables to follow and how their rows become entities. Validated at start-up; each message names the option and
/// quotes the bad value.
/// </summary>
public sealed partial class PostgresChangeFeedOptions
{
    /// <summary>
    /// The Npgsql connection string of the database whose tables are followed. The user needs the <c>REPLICATION</c>
    /// attribute (or superuser), the right to create the publication (owner of the tables) and, for the heartbeat,
    /// to execute <c>pg_logical_emit_message</c>. <value>Default empty (must be set).</value>
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>
    /// The logical replication slot (created with the <c>pgoutput</c> plugin when missing). One slot per feed: two
    /// feeds must not share a slot. 1..63 of <c>[a-z0-9_]</c>. <value>Default <c>crossstoresync</c>.</value>
    /// </summary>
    public string SlotName { get; set; } = "crossstoresync";

    /// <summary>
    /// The publication (created <c>FOR TABLE</c> the followed tables, publishing insert, update and delete, when
    /// missing; followed tables it lacks are added). <value>Default <c>crossstoresync</c>.</value>
    /// </summary>
    public string PublicationName { get; set; } = "crossstoresync";

    /// <summary>The followed tables and how their rows map to entities; at least one. See <see cref="MapTable"/>.</summary>
    public IList<PostgresTableMapping> Tables { get; } = [];

    /// <summary>
    /// The most row changes written through the engine in one transaction. A larger transaction is split over
    /// several batches (the position records how far into it the feed got). 1..10000. <value>Default 500.</value>
    /// </summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>
    /// How often the feed emits a heartbeat (<c>pg_logical_emit_message</c>, non-transactional) into the followed
    /// database. When it comes back through the slot, everything before it is handled, so the feed can confirm that
    /// position: the slot then releases WAL while the followed tables are idle or only other tables change.
    /// <see cref="TimeSpan.Zero"/> turns heartbeats off (the slot then advances only with changes of the followed
    /// tables). <value>Default 10 seconds.</value>
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often the feed reports its durable position to the server (standby status update), which lets the slot
    /// advance its <c>confirmed_flush_lsn</c>. 100 ms..10 minutes. <value>Default 10 seconds.</value>
    /// </summary>
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether the feed, when it creates its slot (first start, or after <see cref="PostgresChangeFeed.AcknowledgeSlotLossAsync"/>),
    /// first copies the rows the followed tables already hold, so rows written before the feed existed reach the stores
    /// too. The slot is created before the copy, so nothing written meanwhile is missed; an interrupted copy starts over
    /// at the next start. <value>Default true.</value>
    /// </summary>
    public bool CopyExistingRows { get; set; } = true;

    /// <summary>The first delay before reconnecting after a lost connection; it doubles up to 30 seconds. <value>Default 1 second.</value></summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The name under which the feed's position is saved in the change log: <c>postgres/</c> + <see cref="SlotName"/>.</summary>
    public string FeedName => "postgres/" + SlotName;

    /// <summary>Follows a table: its rows become entities of <paramref name="collection"/>.</summary>
    /// <param name="table">The table, <c>schema.name</c> or <c>name</c> (schema <c>public</c>); unquoted identifiers.</param>
    /// <param name="collection">The collection (configured with <c>AddCollection</c>).</param>
    /// <param name="map">Builds the entity from a row; null uses <see cref="PostgresTableMapping.DefaultMap"/> (all columns as the document).</param>
    /// <param name="id">Builds the entity id from a row's key columns; null joins the replica-identity columns with <c>/</c>.</param>
    /// <returns>These options.</returns>
    /// <exception cref="ArgumentException">The table or collection name is invalid.</exception>
    public PostgresChangeFeedOptions MapTable(string table, string collection, PostgresRowMapper? map = null, Func<PostgresRow, string>? id = null)
    {
        Tables.Add(new PostgresTableMapping(table, collection, map, id));
        return this;
    }

    /// <summary>Throws when an option is invalid; the message names the option and quotes the value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("PostgresChangeFeedOptions.ConnectionString is empty; set the connection string of the followed database.", nameof(ConnectionString));
        }

        try
        {
            _ = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
        }
        catch (ArgumentException ex)
        {
            // The value may hold a password: name the problem, not the value.
            throw new ArgumentException($"PostgresChangeFeedOptions.ConnectionString is not a valid Npgsql connection string: {SafeText.Text(ex.Message)}", nameof(ConnectionString), ex);
        }

        if (SlotName is null || !SlotPattern().IsMatch(SlotName))
        {
            throw new ArgumentException($"PostgresChangeFeedOptions.SlotName is {SafeText.Quote(SlotName)}; it must be 1..63 of lower-case letters, digits and '_'.", nameof(SlotName));
        }

        if (PublicationName is null || !PostgresTableMapping.IdentifierPattern().IsMatch(PublicationName))
        {
            throw new ArgumentException($"PostgresChangeFeedOptions.PublicationName is {SafeText.Quote(PublicationName)}; it must be an unquoted identifier (letter or '_', then letters, digits, '_' or '$'; at most 63).", nameof(PublicationName));
        }

        if (Tables.Count == 0)
        {
            throw new ArgumentException("PostgresChangeFeedOptions.Tables is empty; follow at least one table with MapTable.", nameof(Tables));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Tables.Count; i++)
        {
            var table = Tables[i] ?? throw new ArgumentException($"PostgresChangeFeedOptions.Tables[{i}] is null.", nameof(Tables));
            if (!seen.Add(table.Table))
            {
                throw new ArgumentException($"PostgresChangeFeedOptions.Tables has {SafeText.Quote(table.Table)} twice; map each table once.", nameof(Tables));
            }
        }

        if (BatchSize is < 1 or > 10_000)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"PostgresChangeFeedOptions.BatchSize is {BatchSize}; it must be in 1..10000."), nameof(BatchSize));
        }

        if (HeartbeatInterval < TimeSpan.Zero || HeartbeatInterval > TimeSpan.Zero && HeartbeatInterval < TimeSpan.FromMilliseconds(10) || HeartbeatInterval > TimeSpan.FromDays(1))
        {
            throw new ArgumentException($"PostgresChangeFeedOptions.HeartbeatInterval is {HeartbeatInterval}; it must be zero (off) or in 10 ms..1 day.", nameof(HeartbeatInterval));
        }

        if (StatusInterval < TimeSpan.FromMilliseconds(100) || StatusInterval > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException($"PostgresChangeFeedOptions.StatusInterval is {StatusInterval}; it must be in 100 ms..10 minutes.", nameof(StatusInterval));
        }

        if (ReconnectDelay < TimeSpan.FromMilliseconds(1) || ReconnectDelay > TimeSpan.FromMinutes(5))
        {
            throw new ArgumentException($"PostgresChangeFeedOptions.ReconnectDelay is {ReconnectDelay}; it must be in 1 ms..5 minutes.", nameof(ReconnectDelay));
        }
    }

    [GeneratedRegex("^[a-z0-9_]{1,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex SlotPattern();
}
