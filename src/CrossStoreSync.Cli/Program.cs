using CrossStoreSync.Cli.Commands;
using CrossStoreSync.Cli.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;

// css: the CrossStoreSync operator tool. Exit codes: 0 in sync, 1 differences found, 2 error, 130 cancelled (Ctrl+C).
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C cancels cleanly (a migration stops between batches, cursors and checkpoints are saved); a
    // second one ends the process at once.
    if (!cancellation.IsCancellationRequested)
    {
        e.Cancel = true;
        cancellation.Cancel();
    }
};

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("css");
    config.UseAssemblyInformationalVersion();
    config.CancellationExitCode(ExitCodes.Cancelled);
    config.SetExceptionHandler((ex, _) =>
    {
        // Reached for command-line mistakes (unknown option, bad value); failures inside commands are handled there.
        Console.Error.WriteLine("error: " + ex.Message);
        return ExitCodes.Error;
    });
    config.AddCommand<StatusCommand>("status")
        .WithDescription("Per store: cursor, lag (changes and time), dead letters, faults. With --key, one entity in every store. Exit 1 when a store lags, holds dead letters or is faulted.")
        .WithExample("status")
        .WithExample("status", "--key", "notes/n-1", "--json");
    config.AddCommand<CheckCommand>("check")
        .WithDescription("Compare every replica with the source of truth (full Merkle, bloom or sampling; --deep reads content). Exit 1 when differences are found.")
        .WithExample("check", "--deep")
        .WithExample("check", "--collection", "notes", "--mode", "sampling", "--sample-fraction", "0.05");
    config.AddCommand<RepairCommand>("repair")
        .WithDescription("Check, then list the repairs (dry run) or, with --apply, write them, wait for every store and check again.")
        .WithExample("repair")
        .WithExample("repair", "--apply", "--deep");
    config.AddCommand<MigrateCommand>("migrate")
        .WithDescription("Start or resume a backfill or re-embedding by id (progress, rate, ETA), --rollback one, or list them. Ctrl+C stops it; run again to resume.")
        .WithExample("migrate", "vectors-rebuild", "--target", "vectors")
        .WithExample("migrate", "vectors-rebuild", "--rollback");
    config.AddBranch<CommonSettings>("dead-letters", branch =>
    {
        branch.SetDescription("Changes stores rejected permanently: list, show, replay.");
        branch.AddCommand<DeadLetterListCommand>("list").WithDescription("List dead letters, oldest first. Exit 1 when there are any.");
        branch.AddCommand<DeadLetterShowCommand>("show").WithDescription("One dead letter with its whole reason and the key's status now.");
        branch.AddCommand<DeadLetterReplayCommand>("replay").WithDescription("Re-send each key's current state from the source and wait until every store processed it.");
    });
    config.AddCommand<LogCommand>("log")
        .WithDescription("The change log: head, oldest retained entry, retained and pending entries, every store's cursor (per partition for a shared log), migrations.");
});

return await app.RunAsync(args, cancellation.Token);
