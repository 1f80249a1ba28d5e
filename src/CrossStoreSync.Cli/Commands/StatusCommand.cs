using System.ComponentModel;
using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using Spectre.Console;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Commands;

/// <summary><c>css status</c>: per store cursor, lag, dead letters and faults; or one entity's state in every store.</summary>
internal sealed class StatusCommand : SessionCommand<StatusCommand.Settings>
{
    internal sealed class Settings : CommonSettings
    {
        [CommandOption("-k|--key <COLLECTION/ID>")]
        [Description("Show one entity's state in every store instead (synced, pending, dead-lettered, aborted).")]
        public string? Key { get; set; }
    }

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        return settings.Key is { } key
            ? await KeyStatusAsync(session, settings, Format.ParseKey(key), cancellationToken).ConfigureAwait(false)
            : await StoreStatusAsync(session, settings, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<int> StoreStatusAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        var overview = await session.Inspector.GetOverviewAsync(cancellationToken).ConfigureAwait(false);
        var replicas = overview.Stores.Where(s => !s.IsSource).ToArray();
        var inSync = replicas.All(s => s.LagChanges == 0 && s.DeadLetters == 0 && !s.Faulted && !s.AwaitingBackfill) && overview.PendingEntries == 0;
        if (settings.Json)
        {
            Json.Write(new
            {
                inSync,
                source = overview.Source,
                head = overview.Head,
                pendingEntries = overview.PendingEntries,
                readAt = overview.ReadAt,
                stores = overview.Stores.Select(s => new
                {
                    store = s.Store,
                    role = s.IsSource ? "source" : "replica",
                    cursor = s.Cursor,
                    lagChanges = s.LagChanges,
                    lagSeconds = LagSeconds(overview, s),
                    deadLetters = s.DeadLetters,
                    faulted = s.Faulted,
                    fault = s.Fault,
                    awaitingBackfill = s.AwaitingBackfill,
                    state = State(s),
                }),
            });
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"[bold]CrossStoreSync[/] — log head {Format.Number(overview.Head)}");
            table.AddColumns("Store", "Role", "Cursor", "Lag (changes)", "Lag (time)", "Dead letters", "State");
            foreach (var s in overview.Stores)
            {
                table.AddRow(
                    Markup.Escape(s.Store),
                    s.IsSource ? "source" : "replica",
                    Format.Number(s.Cursor),
                    s.IsSource ? "-" : Format.Number(s.LagChanges),
                    s.IsSource ? "-" : Format.Duration(TimeSpan.FromSeconds(LagSeconds(overview, s))),
                    s.IsSource ? "-" : Format.Number(s.DeadLetters),
                    StateMarkup(s));
            }

            Out.Write(table);
            if (overview.PendingEntries > 0)
            {
                Out.MarkupLine($"[yellow]{overview.PendingEntries} pending log entries[/] wait for the source of truth to confirm them.");
            }

            foreach (var s in replicas.Where(s => s.Faulted))
            {
                Out.MarkupLine($"[red]{Markup.Escape(s.Store)} is stopped by a corrupted log record:[/] {Markup.Escape(s.Fault!)}");
            }

            Out.MarkupLine(inSync ? "[green]In sync.[/]" : "[yellow]Not in sync.[/]");
        }

        return inSync ? ExitCodes.Ok : ExitCodes.Differences;
    }

    private static async Task<int> KeyStatusAsync(SyncSession session, Settings settings, Model.EntityKey key, CancellationToken cancellationToken)
    {
        var status = await session.Manager.GetStatusAsync(key, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Json.Write(new
            {
                inSync = status.IsSynced,
                key = new { collection = key.Collection, id = key.Id },
                lastLsn = status.LastLsn,
                version = status.Version?.Value,
                stores = status.Stores.Select(s => new { store = s.Store, state = s.State, cursor = s.Cursor, reason = s.Reason }),
            });
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"{Format.Key(key)} — last log entry {(status.LastLsn is { } lsn ? Format.Number(lsn) : "none")}, version {Format.Version(status.Version)}");
            table.AddColumns("Store", "State", "Cursor", "Reason");
            foreach (var s in status.Stores)
            {
                var color = s.State == StoreSyncState.Synced ? "green" : s.State == StoreSyncState.Pending ? "yellow" : "red";
                table.AddRow(Markup.Escape(s.Store), $"[{color}]{s.State}[/]", Format.Number(s.Cursor), Markup.Escape(s.Reason ?? ""));
            }

            Out.Write(table);
        }

        return status.IsSynced ? ExitCodes.Ok : ExitCodes.Differences;
    }

    internal static double LagSeconds(ChangeLogOverview overview, StoreCursorStatus store) =>
        store.OldestUnappliedAt is { } at ? Math.Max(0, (overview.ReadAt - at).TotalSeconds) : 0;

    private static string State(StoreCursorStatus s) =>
        s.IsSource ? "source"
        : s.Faulted ? "faulted"
        : s.AwaitingBackfill ? "awaiting-backfill"
        : s.LagChanges > 0 ? "lagging"
        : s.DeadLetters > 0 ? "dead-letters"
        : "in-sync";

    private static string StateMarkup(StoreCursorStatus s) => State(s) switch
    {
        "in-sync" => "[green]in sync[/]",
        "source" => "[blue]source[/]",
        "lagging" => "[yellow]lagging[/]",
        "awaiting-backfill" => "[yellow]awaiting backfill[/]",
        "dead-letters" => "[yellow]dead letters[/]",
        _ => "[red]faulted[/]",
    };
}
