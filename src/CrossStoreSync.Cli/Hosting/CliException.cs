namespace CrossStoreSync.Cli.Hosting;

/// <summary>A problem the tool explains in one message and ends with <see cref="ExitCodes.Error"/> (no stack trace).</summary>
internal sealed class CliException : Exception
{
    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CliException()
    {
    }
}
