using CrossStoreSync.Errors;

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CrossStoreSync.Model;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>
/// Builds the entity a row stands for: the document, and optionally a vector and edges. Return null when the row
/// should not exist in the stores: the feed then writes a delete of <paramref name="key"/> (a filter that hides rows
/// also removes a row that stops matching it).
/// </summary>
/// <param name="key">The entity key (the mapping's collection and the id built from the row's key columns).</param>
/// <param name="row">The row's new values.</param>
/// <returns>The entity, whose key must be <paramref name="key"/>; or null for "not in the stores".</returns>
public delegate SyncEntity? PostgresRowMapper(EntityKey key, PostgresRow row);

/// <summary>One followed table and how its rows map to entities of a collection. Immutable.</summary>
public sealed partial class PostgresTableMapping
{
    /// <summary>Creates a mapping.</summary>
    /// <param name="table">The table, <c>schema.name</c> or <c>name</c> (schema <c>public</c>); unquoted identifiers, case as stored.</param>
    /// <param name="collection">The collection its rows become.</param>
    /// <param name="map">Builds the entity from a row; null uses <see cref="DefaultMap"/>.</param>
    /// <param name="id">
    /// Builds the id from a row. It receives full rows and, for deletes and key changes, rows holding only the
    /// replica-identity columns, so it must read only those. Null joins the replica-identity column values with <c>/</c>.
    /// </param>
    /// <exception cref="ArgumentException">The table or collection name is invalid.</exception>
    public PostgresTableMapping(string table, string collection, PostgresRowMapper? map = null, Func<PostgresRow, string>? id = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        var dot = table.IndexOf('.', StringComparison.Ordinal);
        var schema = dot < 0 ? "public" : table[..dot];
        var name = dot < 0 ? table : table[(dot + 1)..];
        if (!IdentifierPattern().IsMatch(schema) || !IdentifierPattern().IsMatch(name))
        {
            throw new ArgumentException($"The table {SafeText.Quote(table)} is not valid: use 'schema.name' or 'name' with unquoted identifiers (letter or '_', then letters, digits, '_' or '$'; at most 63 each).", nameof(table));
        }

        EntityKey.ValidateCollection(collection, nameof(collection));
        Schema = schema;
        Name = name;
        Collection = collection;
        Map = map ?? DefaultMap;
        Id = id ?? DefaultId;
    }

    /// <summary>The table's schema.</summary>
    public string Schema { get; }

    /// <summary>The table's name.</summary>
    public string Name { get; }

    /// <summary>The table as <c>schema.name</c>.</summary>
    public string Table => Schema + "." + Name;

    /// <summary>The collection its rows become.</summary>
    public string Collection { get; }

    /// <summary>Builds the entity from a row.</summary>
    public PostgresRowMapper Map { get; }

    /// <summary>Builds the entity id from a row (full or key-only).</summary>
    public Func<PostgresRow, string> Id { get; }

    /// <summary>The default mapping: every column of the row as a JSON object, no vector, no edges.</summary>
    public static SyncEntity DefaultMap(EntityKey key, PostgresRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return new SyncEntity(key, row.ToJson());
    }

    /// <summary>The default id: the values of the row's replica-identity (primary key) columns, joined with <c>/</c>.</summary>
    /// <exception cref="InvalidOperationException">The table has no replica-identity column.</exception>
    public static string DefaultId(PostgresRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var keys = row.KeyColumns;
        if (keys.Count == 0)
        {
            throw new InvalidOperationException($"The table {row.Schema}.{row.Table} has no primary key or replica identity index, so rows have no default id; add a primary key or pass an id function to MapTable.");
        }

        if (keys.Count == 1)
        {
            return Render(row[keys[0]]);
        }

        var id = new StringBuilder();
        foreach (var column in keys)
        {
            if (id.Length > 0)
            {
                id.Append('/');
            }

            id.Append(Render(row[column]));
        }

        return id.ToString();
    }

    internal string QuotedTable => Quote(Schema) + "." + Quote(Name);

    internal static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Render(object? value) => value switch
    {
        null => string.Empty,
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_$]{0,62}$", RegexOptions.CultureInvariant)]
    internal static partial Regex IdentifierPattern();
}
