namespace CrossStoreSync.Configuration;

/// <summary>
/// The configuration section given to <c>AddCrossStoreSync(configuration)</c> is invalid. Thrown while services are
/// registered, before anything starts; lists every problem found, each with the configuration key and its value.
/// </summary>
public sealed class CrossStoreSyncConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="failures">The problems, one message each.</param>
    public CrossStoreSyncConfigurationException(IReadOnlyList<string> failures)
        : base(Format(failures))
    {
        Failures = failures;
    }

    /// <summary>Creates the exception.</summary>
    public CrossStoreSyncConfigurationException()
        : this(["The CrossStoreSync configuration is invalid."])
    {
    }

    /// <summary>Creates the exception.</summary>
    public CrossStoreSyncConfigurationException(string message)
        : this([message])
    {
    }

    /// <summary>Creates the exception.</summary>
    public CrossStoreSyncConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Failures = [message];
    }

    /// <summary>The problems, one message each, naming the key and quoting the value.</summary>
    public IReadOnlyList<string> Failures { get; }

    private static string Format(IReadOnlyList<string> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        return failures.Count == 1
            ? "The CrossStoreSync configuration is invalid: " + failures[0]
            : "The CrossStoreSync configuration is invalid:" + string.Concat(failures.Select(f => Environment.NewLine + " - " + f));
    }
}
