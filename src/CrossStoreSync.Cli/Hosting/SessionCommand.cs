using Spectre.Console;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Hosting;

/// <summary>
/// Runs a command against a <see cref="SyncSession"/> and turns its outcome into the documented exit codes: the
/// command's own code (0 or 1), <see cref="ExitCodes.Error"/> with one line on standard error for anything that went
/// wrong, <see cref="ExitCodes.Cancelled"/> after Ctrl+C.
/// </summary>
internal abstract class SessionCommand<TSettings> : AsyncCommand<TSettings>
    where TSettings : CommonSettings
{
    public sealed override async Task<int> ExecuteAsync(CommandContext context, TSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            await using var session = SyncSession.Open(settings, Dispatches(settings));
            return await RunAsync(session, settings, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync(CancelledMessage(settings)).ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The tool's last line: every failure becomes one readable message and the documented exit code.
            await Console.Error.WriteLineAsync("error: " + Describe(ex)).ConfigureAwait(false);
            return ExitCodes.Error;
        }
    }

    /// <summary>Whether the command's engine dispatches (it writes and waits for its changes to reach the stores).</summary>
    protected virtual bool Dispatches(TSettings settings) => false;

    /// <summary>What to say when Ctrl+C stopped the command.</summary>
    protected virtual string CancelledMessage(TSettings settings) => "Cancelled.";

    /// <summary>Runs the command; returns <see cref="ExitCodes.Ok"/> or <see cref="ExitCodes.Differences"/>.</summary>
    protected abstract Task<int> RunAsync(SyncSession session, TSettings settings, CancellationToken cancellationToken);

    /// <summary>The console for tables and progress (standard output).</summary>
    protected static IAnsiConsole Out => AnsiConsole.Console;

    private static string Describe(Exception ex)
    {
        // Start-up failures of the engine wrap the store's error; the innermost message names the store and the cause.
        var message = ex.Message;
        for (var inner = ex.InnerException; inner is not null && ex is not CliException; inner = inner.InnerException)
        {
            if (!message.Contains(inner.Message, StringComparison.Ordinal))
            {
                message += " — " + inner.Message;
            }
        }

        return message;
    }
}
