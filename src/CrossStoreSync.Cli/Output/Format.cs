using System.Globalization;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using Spectre.Console;

namespace CrossStoreSync.Cli.Output;

/// <summary>Small formatting helpers shared by the commands' tables.</summary>
internal static class Format
{
    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Key(EntityKey key) => Markup.Escape($"{key.Collection}/{key.Id}");

    public static string Duration(TimeSpan value) =>
        value.TotalSeconds < 1 ? $"{value.TotalMilliseconds:0} ms"
        : value.TotalMinutes < 1 ? string.Create(CultureInfo.InvariantCulture, $"{value.TotalSeconds:0.0} s")
        : value.TotalHours < 1 ? $"{(int)value.TotalMinutes}m {value.Seconds:00}s"
        : $"{(int)value.TotalHours}h {value.Minutes:00}m";

    public static string Version(HlcTimestamp? version) =>
        version is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v.WallTimeMs).ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) + $" #{v.Counter}@{v.NodeId}" : "-";

    /// <summary>Parses "collection/id".</summary>
    public static EntityKey ParseKey(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1)
        {
            throw new Hosting.CliException($"--key is {SafeText.Quote(text)}; write it as collection/id, for example notes/n-1.");
        }

        return new EntityKey(text[..slash], text[(slash + 1)..]);
    }

    public static string Truncate(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";
}
