using System.ComponentModel;
using System.Globalization;
using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using CrossStoreSync.Errors;
using CrossStoreSync.Migration;
using Spectre.Console;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Commands;

/// <summary>
/// <c>css migrate</c>: starts or resumes a backfill or re-embedding by id with a progress bar (rate, ETA), rolls one
/// back, or lists them. Ctrl+C stops a run between batches; its checkpoints stay, so the same command resumes it.
/// </summary>
internal sealed class MigrateCommand : SessionCommand<MigrateCommand.Settings>
{
    internal sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[ID]")]
        [Description("The migration's id (1..64 of A-Z a-z 0-9 . _ -). Without it, the migrations are listed.")]
        public string? Id { get; set; }

        [CommandOption("-t|--target <STORE>")]
        [Description("The replica to fill. When resuming, defaults to the target the migration was started with.")]
        public string? Target { get; set; }

        [CommandOption("--collection <NAME>")]
        [Description("A source collection to migrate (repeatable). Default: every configured collection. Give the same ones to resume.")]
        public string[] Collections { get; set; } = [];

        [CommandOption("--target-collection <NAME>")]
        [Description("Re-embedding: write the (single) source collection into this collection through --transform.")]
        public string? TargetCollection { get; set; }

        [CommandOption("--transform <NAME>")]
        [Description("A transform registered by a --plugin (AddTransform), applied to every entity written.")]
        public string? Transform { get; set; }

        [CommandOption("--workers <N>")]
        [Description("Parallel workers, each on its own bucket range (1..64).")]
        [DefaultValue(2)]
        public int Workers { get; set; } = 2;

        [CommandOption("--batch-size <N>")]
        [Description("A fixed batch size, to throttle the migration. Default: adaptive (grows while the target keeps up, halves when it slows).")]
        public int? BatchSize { get; set; }

        [CommandOption("--no-verify")]
        [Description("Skip the consistency check of the target at the end.")]
        public bool NoVerify { get; set; }

        [CommandOption("--rollback")]
        [Description("Remove what the migration wrote (and a re-embedding's route) instead of running it.")]
        public bool Rollback { get; set; }
    }

    protected override bool Dispatches(Settings settings) => settings.Id is not null;

    protected override string CancelledMessage(Settings settings) =>
        settings.Rollback ? "Cancelled." : $"Migration {SafeText.Quote(settings.Id)} stopped; its checkpoints are saved. Run the same command again to resume it.";

    protected override async Task<int> RunAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Id is null)
        {
            return await ListAsync(session, settings, cancellationToken).ConfigureAwait(false);
        }

        if (settings.Rollback)
        {
            var result = await session.Migrations.RollbackAsync(settings.Id, cancellationToken).ConfigureAwait(false);
            if (settings.Json)
            {
                Json.Write(new { migrationId = result.MigrationId, target = result.Target, removed = result.Removed, rolledBack = true });
            }
            else
            {
                Out.MarkupLine($"Rolled back [bold]{Markup.Escape(result.MigrationId)}[/]: removed {Format.Number(result.Removed)} records from {Markup.Escape(result.Target)}.");
            }

            return ExitCodes.Ok;
        }

        var target = settings.Target;
        if (target is null)
        {
            var known = (await session.Migrations.ListAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(m => m.MigrationId == settings.Id);
            target = known?.Target ?? throw new CliException($"Migration {SafeText.Quote(settings.Id)} is not known yet: give --target <STORE> to start it.");
        }

        var request = new MigrationRequest
        {
            Id = settings.Id,
            Target = target,
            Collections = settings.Collections.Length == 0 ? null : settings.Collections,
            TargetCollection = settings.TargetCollection,
            TransformName = settings.Transform,
            Workers = settings.Workers,
            Verify = !settings.NoVerify,
        };
        if (settings.BatchSize is { } fixedSize)
        {
            request = request with { InitialBatchSize = fixedSize, MinBatchSize = fixedSize, MaxBatchSize = fixedSize };
        }

        MigrationReport report;
        try
        {
            report = settings.Json
                ? await session.Migrations.RunAsync(request, new InlineProgress<MigrationProgress>(WriteProgressLine), cancellationToken).ConfigureAwait(false)
                : await RunWithProgressAsync(session, request, cancellationToken).ConfigureAwait(false);
        }
        catch (MigrationException ex)
        {
            throw new CliException($"Migration {SafeText.Quote(settings.Id)} failed: {SafeText.Text(ex.Message)} Its checkpoints stay; run the command again to resume.", ex);
        }

        var clean = report.IsVerified && report.Failed == 0;
        if (settings.Json)
        {
            Json.Write(new
            {
                migrationId = report.MigrationId,
                target = report.Target,
                startLsn = report.StartLsn,
                written = report.Written,
                failed = report.Failed,
                resumedFrom = report.ResumedFrom,
                retries = report.Retries,
                durationMs = report.Duration.TotalMilliseconds,
                batchSizes = new { min = report.BatchSizes.Min, final = report.BatchSizes.Final, max = report.BatchSizes.Max },
                verified = report.IsVerified,
                failures = report.Failures.Select(f => new { collection = f.Key.Collection, id = f.Key.Id, reason = f.Reason }),
                verification = report.Verification.Select(ReportView.ToJson),
            });
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"Migration [bold]{Markup.Escape(report.MigrationId)}[/] → {Markup.Escape(report.Target)}");
            table.AddColumns("Written", "Dead-lettered", "Resumed from", "Retries", "Batch sizes (min/final/max)", "Duration", "Verified");
            table.AddRow(
                Format.Number(report.Written),
                report.Failed == 0 ? "0" : $"[red]{Format.Number(report.Failed)}[/]",
                Format.Number(report.ResumedFrom),
                Format.Number(report.Retries),
                $"{report.BatchSizes.Min}/{report.BatchSizes.Final}/{report.BatchSizes.Max}",
                Format.Duration(report.Duration),
                report.Verification.Count == 0 ? "skipped" : report.IsVerified ? "[green]yes[/]" : "[red]differences[/]");
            Out.Write(table);
            foreach (var verification in report.Verification.Where(v => !v.IsConsistent))
            {
                ReportView.Render(Out, verification, 20);
            }
        }

        return clean ? ExitCodes.Ok : ExitCodes.Differences;
    }

    private static async Task<MigrationReport> RunWithProgressAsync(SyncSession session, MigrationRequest request, CancellationToken cancellationToken)
    {
        MigrationReport? report = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask($"{Markup.Escape(request.Id)} → {Markup.Escape(request.Target)}: starting", maxValue: 1);
                task.IsIndeterminate = true;
                var progress = new InlineProgress<MigrationProgress>(p =>
                {
                    task.IsIndeterminate = p.Total <= 0 && p.Phase == MigrationPhase.Starting;
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = Math.Min(p.Done, task.MaxValue);
                    var eta = p.EstimatedRemaining is { } r ? Format.Duration(r) : "-";
                    task.Description = string.Create(
                        CultureInfo.InvariantCulture,
                        $"{Markup.Escape(request.Id)} → {Markup.Escape(request.Target)}: {p.Phase.ToString().ToLowerInvariant()} {Format.Number(p.Done)}/{Format.Number(p.Total)}, {p.EntitiesPerSecond:N0}/s, ETA {eta}, batch {p.BatchSize}{(p.Errors > 0 ? $", {p.Errors} errors" : "")}");
                });
                report = await session.Migrations.RunAsync(request, progress, cancellationToken).ConfigureAwait(false);
                task.Value = task.MaxValue;
                task.StopTask();
            }).ConfigureAwait(false);
        return report!;
    }

    /// <summary>With --json, progress goes to standard error as one JSON line per report, so scripts can follow it.</summary>
    private static void WriteProgressLine(MigrationProgress p) =>
        Console.Error.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
        {
            progress = new
            {
                migrationId = p.MigrationId,
                phase = p.Phase.ToString().ToLowerInvariant(),
                done = p.Done,
                total = p.Total,
                entitiesPerSecond = Math.Round(p.EntitiesPerSecond, 1),
                etaSeconds = p.EstimatedRemaining?.TotalSeconds,
                batchSize = p.BatchSize,
                errors = p.Errors,
            },
        }));

    private static async Task<int> ListAsync(SyncSession session, Settings settings, CancellationToken cancellationToken)
    {
        var migrations = await session.Migrations.ListAsync(cancellationToken).ConfigureAwait(false);
        if (settings.Json)
        {
            Json.Write(new { migrations = migrations.Select(m => new { migrationId = m.MigrationId, target = m.Target, phase = m.Phase, done = m.Done, startLsn = m.StartLsn }) });
            return ExitCodes.Ok;
        }

        if (migrations.Count == 0)
        {
            Out.MarkupLine("No migrations recorded.");
            return ExitCodes.Ok;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("Migrations");
        table.AddColumns("Id", "Target", "Phase", "Done", "Start LSN");
        foreach (var m in migrations)
        {
            table.AddRow(Markup.Escape(m.MigrationId), Markup.Escape(m.Target), m.Phase.ToString(), Format.Number(m.Done), Format.Number(m.StartLsn));
        }

        Out.Write(table);
        return ExitCodes.Ok;
    }

    /// <summary>Reports on the caller's thread (unlike <see cref="Progress{T}"/>, which posts and may reorder reports).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
