using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using Spectre.Console;

namespace CrossStoreSync.Cli.Commands;

/// <summary><c>css check</c>: compares every replica with the source of truth and reports the differences.</summary>
internal sealed class CheckCommand : SessionCommand<CheckSettings>
{
    protected override async Task<int> RunAsync(SyncSession session, CheckSettings settings, CancellationToken cancellationToken)
    {
        var collections = ConsistencyRunner.Collections(session, settings);
        var reports = await ConsistencyRunner.CheckAsync(session, settings, collections, "check", cancellationToken).ConfigureAwait(false);
        var consistent = reports.All(r => r.IsConsistent);
        if (settings.Json)
        {
            Json.Write(new { consistent, collections = reports.Select(ReportView.ToJson) });
        }
        else
        {
            foreach (var report in reports)
            {
                ReportView.Render(Out, report, settings.Show);
            }

            Out.MarkupLine(consistent ? "[green]Every store agrees with the source of truth.[/]" : "[red]Differences found.[/] Run [bold]css repair[/] to see the repairs, [bold]css repair --apply[/] to make them.");
        }

        return consistent ? ExitCodes.Ok : ExitCodes.Differences;
    }
}
