using System.ComponentModel;
using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Sync;
using Spectre.Console;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Commands;

/// <summary>Options of the dead-letter commands.</summary>
internal class DeadLetterSettings : CommonSettings
{
    [CommandOption("--store <NAME>")]
    [Description("Only this store's dead letters.")]
    public string? Store { get; set; }
}

/// <summary><c>css dead-letters list</c>: changes stores rejected permanently, oldest first.</summary>
internal sealed class DeadLetterListCommand : SessionCommand<DeadLetterListCommand.Settings>
{
    internal sealed class Settings : DeadLetterSettings
    {
        [CommandOption("--max <N>")]
        [Description("The most dead letters listed.")]
        [DefaultValue(1000)]
        public int Max { get; set; } = 1000;
    }

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Max < 1)
        {
            throw new CliException($"--max is {settings.Max}; it must be at least 1.");
        }

        var letters = await session.Manager.GetDeadLettersAsync(settings.Store, settings.Max, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Json.Write(new { count = letters.Count, deadLetters = letters.Select(DeadLetterView.ToJson) });
        }
        else if (letters.Count == 0)
        {
            Out.MarkupLine("[green]No dead letters.[/]");
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"{Format.Number(letters.Count)} dead letters");
            table.AddColumns("Id", "Store", "LSN", "Key", "Change", "Dead-lettered at", "Reason");
            foreach (var l in letters)
            {
                table.AddRow(l.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(l.Store), Format.Number(l.Lsn), Format.Key(l.Key), l.Kind.ToString(), l.CreatedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(Format.Truncate(l.Reason, 80)));
            }

            Out.Write(table);
            Out.MarkupLine("[grey]css dead-letters show ID gives the whole reason; css dead-letters replay re-sends the keys' current state.[/]");
        }

        return letters.Count == 0 ? ExitCodes.Ok : ExitCodes.Differences;
    }
}

/// <summary><c>css dead-letters show ID</c>: one dead letter with its whole reason and the key's status now.</summary>
internal sealed class DeadLetterShowCommand : SessionCommand<DeadLetterShowCommand.Settings>
{
    internal sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<ID>")]
        [Description("The dead letter's id (from css dead-letters list).")]
        public long Id { get; set; }
    }

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        var letters = await session.Manager.GetDeadLettersAsync(null, 10_000, cancellationToken).ConfigureAwait(false);
        var letter = letters.FirstOrDefault(l => l.Id == settings.Id)
            ?? throw new CliException($"Dead letter {settings.Id} does not exist (replayed, or never recorded); css dead-letters list shows the current ones.");
        var status = await session.Manager.GetStatusAsync(letter.Key, cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Json.Write(new
            {
                deadLetter = DeadLetterView.ToJson(letter),
                current = status.Stores.Select(s => new { store = s.Store, state = s.State, cursor = s.Cursor, reason = s.Reason }),
            });
        }
        else
        {
            var grid = new Grid().AddColumn().AddColumn();
            grid.AddRow("[bold]Dead letter[/]", letter.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            grid.AddRow("Store", Markup.Escape(letter.Store));
            grid.AddRow("Key", Format.Key(letter.Key));
            grid.AddRow("Change", $"{letter.Kind} at LSN {Format.Number(letter.Lsn)}, version {Format.Version(letter.Version)}");
            grid.AddRow("Dead-lettered at", letter.CreatedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture));
            grid.AddRow("Reason", Markup.Escape(letter.Reason));
            grid.AddRow("Now", string.Join(", ", status.Stores.Select(s => $"{Markup.Escape(s.Store)}: {s.State}")));
            Out.Write(new Panel(grid).Header("css dead-letters show"));
        }

        return ExitCodes.Ok;
    }
}

/// <summary>
/// <c>css dead-letters replay</c>: re-sends each dead-lettered key's current state from the source through the log and
/// waits until every store processed it.
/// </summary>
internal sealed class DeadLetterReplayCommand : SessionCommand<DeadLetterReplayCommand.Settings>
{
    internal sealed class Settings : DeadLetterSettings
    {
        [CommandOption("--timeout <DURATION>")]
        [Description("How long to wait for the replayed changes to reach every store (hh:mm:ss).")]
        [DefaultValue("00:05:00")]
        public string Timeout { get; set; } = "00:05:00";
    }

    protected override bool Dispatches(Settings settings) => true;

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        if (!TimeSpan.TryParse(settings.Timeout, System.Globalization.CultureInfo.InvariantCulture, out var timeout) || timeout <= TimeSpan.Zero)
        {
            throw new CliException($"--timeout is {SafeText.Quote(settings.Timeout)}; write a positive duration such as 00:05:00.");
        }

        var before = (await session.Inspector.GetOverviewAsync(cancellationToken).ConfigureAwait(false)).Head;
        var replayed = await session.Manager.ReplayDeadLettersAsync(settings.Store, cancellationToken).ConfigureAwait(false);
        SyncWaitOutcome outcome = SyncWaitOutcome.Synced;
        if (replayed > 0)
        {
            var after = (await session.Inspector.GetOverviewAsync(cancellationToken).ConfigureAwait(false)).Head;
            var ticket = new SyncTicket(new LsnRange(before + 1, after), default);
            outcome = await session.Manager.WaitForSyncAsync(ticket, timeout, cancellationToken).ConfigureAwait(false);
        }

        if (settings.Json)
        {
            Json.Write(new { replayed, outcome });
        }
        else
        {
            Out.MarkupLine(outcome switch
            {
                _ when replayed == 0 => "[green]No dead letters to replay.[/]",
                SyncWaitOutcome.Synced => $"[green]Replayed {replayed} dead letters; every store applied them.[/]",
                SyncWaitOutcome.DeadLettered => $"[yellow]Replayed {replayed} dead letters; some were rejected again[/] (css dead-letters list).",
                _ => $"[red]Replayed {replayed} dead letters, but they did not reach every store within {settings.Timeout}[/] (css status).",
            });
        }

        return outcome switch
        {
            SyncWaitOutcome.Synced => ExitCodes.Ok,
            SyncWaitOutcome.TimedOut => ExitCodes.Error,
            _ => ExitCodes.Differences,
        };
    }
}

/// <summary>Dead letters as JSON.</summary>
internal static class DeadLetterView
{
    public static object ToJson(DeadLetter l) => new
    {
        id = l.Id,
        store = l.Store,
        lsn = l.Lsn,
        collection = l.Key.Collection,
        key = l.Key.Id,
        kind = l.Kind,
        version = l.Version.Value,
        reason = l.Reason,
        createdAt = l.CreatedAt,
    };
}
