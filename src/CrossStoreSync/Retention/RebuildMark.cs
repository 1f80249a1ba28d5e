namespace CrossStoreSync.Retention;

/// <summary>
/// The durable mark of a replica that the log no longer serves (checkpoint <c>rebuild/{store}</c>): set before the log
/// is truncated past its cursor, cleared when a migration has rebuilt it and a check found it clean. While it exists the
/// store's dispatcher applies nothing, in every process that shares the log.
/// </summary>
internal sealed class RebuildMark
{
    public const string Prefix = "rebuild/";

    public required string Store { get; set; }

    public required string Reason { get; set; }

    /// <summary>The store's cursor when it was cut off.</summary>
    public long Cursor { get; set; }

    /// <summary>The log's head then.</summary>
    public long Head { get; set; }

    public DateTimeOffset MarkedAt { get; set; }

    public static string Name(string store) => Prefix + store;

    /// <summary>A migration id for an automatic rebuild: stable per mark, so a failed rebuild resumes rather than restarts.</summary>
    public string MigrationId()
    {
        var name = new string(Store.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray());
        var suffix = "-" + MarkedAt.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "rebuild-" + name[..Math.Min(name.Length, 64 - "rebuild-".Length - suffix.Length)] + suffix;
    }
}
