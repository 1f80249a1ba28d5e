namespace CrossStoreSync.Configuration.Binding;

/// <summary>Turns the messages of options validation into messages about configuration keys.</summary>
internal static class ConfigurationMessages
{
    /// <summary>The exception's message without the " (Parameter 'x')" suffix the runtime appends.</summary>
    public static string WithoutParameter(ArgumentException ex)
    {
        var message = ex.Message;
        if (ex.ParamName is { } name)
        {
            var suffix = $" (Parameter '{name}')";
            var at = message.IndexOf(suffix, StringComparison.Ordinal);
            if (at >= 0)
            {
                message = message.Remove(at, suffix.Length);
            }
        }

        return message;
    }

    /// <summary>
    /// Rewrites "<paramref name="optionsTypeName"/>.Field is ..." to "<paramref name="path"/>:Field is ...", so the
    /// message names the configuration key; other messages are prefixed with the section's path.
    /// </summary>
    public static string UnderPath(string message, string optionsTypeName, string path)
    {
        var prefix = optionsTypeName + ".";
        return message.StartsWith(prefix, StringComparison.Ordinal)
            ? path + ":" + message[prefix.Length..]
            : message.StartsWith(optionsTypeName, StringComparison.Ordinal)
                ? path + message[optionsTypeName.Length..]
                : path + ": " + message;
    }
}
