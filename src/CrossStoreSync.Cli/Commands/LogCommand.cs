using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using Spectre.Console;

namespace CrossStoreSync.Cli.Commands;

/// <summary><c>css log</c>: the change log's head, what it retains, every store's cursor and the recorded migrations.</summary>
internal sealed class LogCommand : SessionCommand<CommonSettings>
{
    protected override async Task<int> RunAsync(SyncSession session, CommonSettings settings, CancellationToken cancellationToken)
    {
        var overview = await session.Inspector.GetOverviewAsync(cancellationToken).ConfigureAwait(false);
        var migrations = await session.Migrations.ListAsync(cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Json.Write(new
            {
                head = overview.Head,
                oldestLsn = overview.OldestLsn,
                retainedEntries = overview.RetainedEntries,
                pendingEntries = overview.PendingEntries,
                partitions = overview.Partitions,
                cursors = overview.Stores.Where(s => !s.IsSource).Select(s => new { store = s.Store, cursor = s.Cursor, lagChanges = s.LagChanges, partitionCursors = s.PartitionCursors }),
                migrations = migrations.Select(m => new { migrationId = m.MigrationId, target = m.Target, phase = m.Phase, done = m.Done, startLsn = m.StartLsn }),
            });
            return ExitCodes.Ok;
        }

        var summary = new Grid().AddColumn().AddColumn();
        summary.AddRow("Head (last LSN)", Format.Number(overview.Head));
        summary.AddRow("Oldest retained LSN", overview.OldestLsn is { } o ? Format.Number(o) : "-");
        summary.AddRow("Retained entries", Format.Number(overview.RetainedEntries));
        summary.AddRow("Pending entries", Format.Number(overview.PendingEntries));
        if (overview.Partitions is { } partitions)
        {
            summary.AddRow("Partitions (shared log)", partitions.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Out.Write(new Panel(summary).Header($"Change log of {Markup.Escape(overview.Source)}"));
        var cursors = new Table().Border(TableBorder.Rounded).Title("Cursors");
        cursors.AddColumns("Store", "Cursor", "Behind head", "Partition cursors");
        foreach (var s in overview.Stores.Where(s => !s.IsSource))
        {
            cursors.AddRow(Markup.Escape(s.Store), Format.Number(s.Cursor), Format.Number(s.LagChanges), s.PartitionCursors is { } p ? Format.Truncate(string.Join(" ", p.Select((c, i) => $"{i}:{c}")), 60) : "-");
        }

        Out.Write(cursors);
        if (migrations.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).Title("Migrations (they hold their start position)");
            table.AddColumns("Id", "Target", "Phase", "Done", "Start LSN");
            foreach (var m in migrations)
            {
                table.AddRow(Markup.Escape(m.MigrationId), Markup.Escape(m.Target), m.Phase.ToString(), Format.Number(m.Done), Format.Number(m.StartLsn));
            }

            Out.Write(table);
        }

        return ExitCodes.Ok;
    }
}
