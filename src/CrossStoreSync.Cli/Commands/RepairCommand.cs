using System.ComponentModel;
using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using Spectre.Console;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Commands;

/// <summary>
/// <c>css repair</c>: checks, then lists the repairs (dry run, the default) or, with <c>--apply</c>, writes them through
/// the change log, waits until every store applied them and checks again.
/// </summary>
internal sealed class RepairCommand : SessionCommand<RepairCommand.Settings>
{
    internal sealed class Settings : CheckSettings
    {
        [CommandOption("--apply")]
        [Description("Write the repairs (re-project from the source, delete orphans) and wait for them to sync. Without it nothing is written.")]
        public bool Apply { get; set; }

        [CommandOption("--timeout <DURATION>")]
        [Description("How long --apply waits for the repairs to reach every store (hh:mm:ss).")]
        [DefaultValue("00:05:00")]
        public string Timeout { get; set; } = "00:05:00";
    }

    protected override bool Dispatches(Settings settings) => settings.Apply;

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        if (!TimeSpan.TryParse(settings.Timeout, System.Globalization.CultureInfo.InvariantCulture, out var timeout) || timeout <= TimeSpan.Zero)
        {
            throw new CliException($"--timeout is {SafeText.Quote(settings.Timeout)}; write a positive duration such as 00:05:00.");
        }

        var collections = ConsistencyRunner.Collections(session, settings);
        var before = await ConsistencyRunner.CheckAsync(session, settings, collections, "check", cancellationToken).ConfigureAwait(false);
        var results = new List<object>();
        var differences = false;
        var failed = false;
        foreach (var report in before)
        {
            if (!settings.Json)
            {
                ReportView.Render(Out, report, settings.Show);
            }

            var repair = await session.Checker.RepairAsync(report, dryRun: !settings.Apply, cancellationToken).ConfigureAwait(false);
            if (!settings.Json)
            {
                RenderActions(repair, settings.Show);
            }

            if (!settings.Apply)
            {
                differences |= repair.Actions.Count > 0;
                results.Add(new { collection = report.Collection, before = ReportView.ToJson(report), actions = Actions(repair) });
                continue;
            }

            SyncWaitOutcome? outcome = null;
            if (repair.Ticket is { } ticket)
            {
                outcome = settings.Json
                    ? await session.Manager.WaitForSyncAsync(ticket, timeout, cancellationToken).ConfigureAwait(false)
                    : await Out.Status().StartAsync($"Waiting for {repair.Actions.Count} repairs to reach every store…", _ => session.Manager.WaitForSyncAsync(ticket, timeout, cancellationToken).AsTask()).ConfigureAwait(false);
                if (outcome == SyncWaitOutcome.TimedOut)
                {
                    failed = true;
                }
            }

            results.Add(new { collection = report.Collection, before = ReportView.ToJson(report), actions = Actions(repair), outcome });
        }

        IReadOnlyList<ConsistencyReport> after = [];
        if (settings.Apply && !failed)
        {
            // A second check proves the repair: the exit code says what the stores hold now, not what was attempted.
            after = await ConsistencyRunner.CheckAsync(session, settings, collections, "re-check", cancellationToken).ConfigureAwait(false);
            differences = after.Any(r => !r.IsConsistent);
        }

        if (settings.Json)
        {
            Json.Write(new { apply = settings.Apply, consistent = settings.Apply && !failed && !differences, collections = results, after = after.Select(ReportView.ToJson) });
        }
        else
        {
            foreach (var report in after)
            {
                ReportView.Render(Out, report, settings.Show);
            }

            Out.MarkupLine(
                failed ? $"[red]The repairs did not reach every store within {settings.Timeout}.[/] Check [bold]css status[/]: a replica may be down or lagging."
                : !settings.Apply ? differences ? "[yellow]Dry run: nothing was written.[/] Run again with [bold]--apply[/] to make these repairs." : "[green]Nothing to repair.[/]"
                : differences ? "[yellow]Repaired, but differences remain[/] (changes in flight, dead letters, or more findings than one report lists): check and repair again." : "[green]Repaired: every store agrees with the source of truth.[/]");
        }

        return failed ? ExitCodes.Error : differences ? ExitCodes.Differences : ExitCodes.Ok;
    }

    private static void RenderActions(RepairResult repair, int show)
    {
        if (repair.Actions.Count == 0)
        {
            return;
        }

        var table = new Table().Border(TableBorder.Simple).Title(repair.DryRun ? "Repairs (dry run: not written)" : "Repairs written");
        table.AddColumns("Key", "Action", "Stores");
        foreach (var action in repair.Actions.Take(Math.Max(show, 1)))
        {
            table.AddRow(Format.Key(action.Key), action.Kind == Model.ChangeKind.Delete ? "delete" : "re-project from source", Markup.Escape(string.Join(", ", action.Stores)));
        }

        Out.Write(table);
        if (repair.Actions.Count > show)
        {
            Out.MarkupLine($"[grey]{Format.Number(repair.Actions.Count)} repairs in all.[/]");
        }
    }

    private static IEnumerable<object> Actions(RepairResult repair) =>
        repair.Actions.Select(a => new { collection = a.Key.Collection, id = a.Key.Id, action = a.Kind == Model.ChangeKind.Delete ? "delete" : "upsert", version = a.Version.Value, stores = a.Stores });
}
