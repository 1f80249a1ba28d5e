using CrossStoreSync.Errors;

using System.Buffers;
using System.Collections;
using System.Globalization;
using System.Text.Json;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>
/// One row of a followed table as logical replication reported it: column name → value (decoded by Npgsql's
/// default type mapping; SQL NULL is null). A row from a delete or the old key of a key change holds only the
/// replica-identity columns (<see cref="IsKeyOnly"/>). Immutable; valid only during the mapping call it is passed to.
/// </summary>
public sealed class PostgresRow
{
    private const uint JsonOid = 114;
    private const uint JsonbOid = 3802;
    private readonly Dictionary<string, int> _index;
    private readonly PostgresColumn[] _columns;
    private readonly object?[] _values;

    internal PostgresRow(string schema, string table, PostgresColumn[] columns, object?[] values, IReadOnlyList<string> keyColumns, bool keyOnly)
    {
        Schema = schema;
        Table = table;
        _columns = columns;
        _values = values;
        KeyColumns = keyColumns;
        IsKeyOnly = keyOnly;
        _index = new Dictionary<string, int>(columns.Length, StringComparer.Ordinal);
        var names = new string[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            _index[columns[i].Name] = i;
            names[i] = columns[i].Name;
        }

        Columns = names;
    }

    /// <summary>The table's schema.</summary>
    public string Schema { get; }

    /// <summary>The table's name.</summary>
    public string Table { get; }

    /// <summary>The columns this row holds, in table order.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>The replica-identity (primary key) columns of the table.</summary>
    public IReadOnlyList<string> KeyColumns { get; }

    /// <summary>True when the row holds only the replica-identity columns (a delete, or the old key of a key change).</summary>
    public bool IsKeyOnly { get; }

    /// <summary>True when the row holds <paramref name="column"/>.</summary>
    public bool Contains(string column) => _index.ContainsKey(column);

    /// <summary>
    /// True when the column holds a large (TOASTed) value the update did not change, which logical replication does
    /// not resend with <c>REPLICA IDENTITY DEFAULT</c>. Use <c>REPLICA IDENTITY FULL</c> on such tables so the feed
    /// can take the value from the old row.
    /// </summary>
    public bool IsUnchanged(string column) => ReferenceEquals(_values[IndexOf(column)], Unchanged.Value);

    /// <summary>The column's value; null for SQL NULL.</summary>
    /// <exception cref="ArgumentException">The row has no such column.</exception>
    /// <exception cref="InvalidOperationException">The value is an unchanged TOASTed value that was not sent (see <see cref="IsUnchanged"/>).</exception>
    public object? this[string column]
    {
        get
        {
            var value = _values[IndexOf(column)];
            if (ReferenceEquals(value, Unchanged.Value))
            {
                throw new InvalidOperationException($"Column {SafeText.Quote(column)} of {Schema}.{Table} is an unchanged TOASTed value that logical replication did not send; set REPLICA IDENTITY FULL on the table or do not read the column.");
            }

            return value;
        }
    }

    /// <summary>The column's value converted to <typeparamref name="T"/> (invariant culture); default for SQL NULL.</summary>
    /// <exception cref="ArgumentException">The row has no such column.</exception>
    /// <exception cref="InvalidCastException">The value cannot be converted.</exception>
    public T? Get<T>(string column)
    {
        var value = this[column];
        if (value is null)
        {
            return default;
        }

        if (value is T typed)
        {
            return typed;
        }

        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    /// <summary>The column's value as text (invariant culture); null for SQL NULL.</summary>
    public string? GetString(string column) => this[column] switch
    {
        null => null,
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        var other => other.ToString(),
    };

    /// <summary>
    /// The column's value as an embedding: a <c>real[]</c>, <c>double precision[]</c> or <c>numeric[]</c> column, or
    /// text in the <c>[1,2,3]</c> form (pgvector's text output); empty for SQL NULL.
    /// </summary>
    /// <exception cref="InvalidCastException">The value is not a vector.</exception>
    public ReadOnlyMemory<float> GetVector(string column)
    {
        switch (this[column])
        {
            case null:
                return ReadOnlyMemory<float>.Empty;
            case float[] floats:
                return floats;
            case double[] doubles:
                var fromDoubles = new float[doubles.Length];
                for (var i = 0; i < doubles.Length; i++)
                {
                    fromDoubles[i] = (float)doubles[i];
                }

                return fromDoubles;
            case decimal[] decimals:
                var fromDecimals = new float[decimals.Length];
                for (var i = 0; i < decimals.Length; i++)
                {
                    fromDecimals[i] = (float)decimals[i];
                }

                return fromDecimals;
            case string text:
                var parts = text.Trim().TrimStart('[', '{').TrimEnd(']', '}').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                var parsed = new float[parts.Length];
                for (var i = 0; i < parts.Length; i++)
                {
                    if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out parsed[i]))
                    {
                        throw new InvalidCastException($"Column {SafeText.Quote(column)} of {Schema}.{Table} is not a vector: {SafeText.Quote(parts[i])} is not a number.");
                    }
                }

                return parsed;
            case var other:
                throw new InvalidCastException($"Column {SafeText.Quote(column)} of {Schema}.{Table} holds a {other.GetType().Name}, not a vector (real[], double precision[], numeric[] or '[1,2,3]' text).");
        }
    }

    /// <summary>
    /// The row as a UTF-8 JSON object (column name → value; <c>json</c>/<c>jsonb</c> columns embedded as JSON,
    /// timestamps in ISO 8601, <c>bytea</c> in base64, non-finite numbers as strings), without the excluded columns.
    /// </summary>
    /// <param name="exclude">Columns to leave out (for example the embedding).</param>
    /// <exception cref="InvalidOperationException">A column left in is an unchanged TOASTed value the server did not send (see <see cref="IsUnchanged"/>): a document without it would silently lose the value.</exception>
    public byte[] ToJson(params string[] exclude)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            for (var i = 0; i < _columns.Length; i++)
            {
                if (exclude is { Length: > 0 } && Array.IndexOf(exclude, _columns[i].Name) >= 0)
                {
                    continue;
                }

                var value = this[_columns[i].Name];

                writer.WritePropertyName(_columns[i].Name);
                if (value is string json && _columns[i].TypeOid is JsonOid or JsonbOid)
                {
                    writer.WriteRawValue(json);
                }
                else
                {
                    WriteValue(writer, value);
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private int IndexOf(string column)
    {
        ArgumentNullException.ThrowIfNull(column);
        return _index.TryGetValue(column, out var i)
            ? i
            : throw new ArgumentException($"The row of {Schema}.{Table} has no column {SafeText.Quote(column)}{(IsKeyOnly ? " (a key-only row holds just the replica-identity columns: " + string.Join(", ", Columns) + ")" : string.Empty)}.", nameof(column));
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
            case DBNull:
                writer.WriteNullValue();
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case short or int or long or byte or sbyte or ushort or uint:
                writer.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case ulong u:
                writer.WriteNumberValue(u);
                break;
            case decimal m:
                writer.WriteNumberValue(m);
                break;
            case float f when float.IsFinite(f):
                writer.WriteNumberValue(f);
                break;
            case double d when double.IsFinite(d):
                writer.WriteNumberValue(d);
                break;
            case float or double:
                writer.WriteStringValue(((IFormattable)value).ToString(null, CultureInfo.InvariantCulture));
                break;
            case DateTime dt:
                writer.WriteStringValue(dt.ToString("O", CultureInfo.InvariantCulture));
                break;
            case DateTimeOffset dto:
                writer.WriteStringValue(dto.ToString("O", CultureInfo.InvariantCulture));
                break;
            case DateOnly date:
                writer.WriteStringValue(date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                break;
            case TimeOnly time:
                writer.WriteStringValue(time.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture));
                break;
            case Guid g:
                writer.WriteStringValue(g);
                break;
            case byte[] bytes:
                writer.WriteBase64StringValue(bytes);
                break;
            case IEnumerable items:
                writer.WriteStartArray();
                foreach (var item in items)
                {
                    WriteValue(writer, item);
                }

                writer.WriteEndArray();
                break;
            case IFormattable formattable:
                writer.WriteStringValue(formattable.ToString(null, CultureInfo.InvariantCulture));
                break;
            default:
                writer.WriteStringValue(value.ToString());
                break;
        }
    }

    /// <summary>Marks an unchanged TOASTed value (not sent by the server).</summary>
    internal sealed class Unchanged
    {
        public static readonly Unchanged Value = new();
    }
}

/// <summary>A column of a followed table as the relation message described it.</summary>
internal readonly record struct PostgresColumn(string Name, uint TypeOid, bool IsKey);
