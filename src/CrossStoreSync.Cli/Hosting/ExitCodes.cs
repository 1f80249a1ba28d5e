namespace CrossStoreSync.Cli.Hosting;

/// <summary>The exit codes scripts can rely on (README, <c>css --help</c>).</summary>
internal static class ExitCodes
{
    /// <summary>Done, and everything is in sync (no lag, no dead letters, no differences).</summary>
    public const int Ok = 0;

    /// <summary>Done, and differences were found: inconsistencies, lag, dead letters, a faulted dispatcher, repairs needed.</summary>
    public const int Differences = 1;

    /// <summary>The command could not do its job: bad arguments or configuration, a store unreachable, a timeout.</summary>
    public const int Error = 2;

    /// <summary>Cancelled with Ctrl+C (128 + SIGINT); a migration resumes from its checkpoints when run again.</summary>
    public const int Cancelled = 130;
}
