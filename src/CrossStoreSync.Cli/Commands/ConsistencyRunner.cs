using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Cli.Output;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using Spectre.Console;

namespace CrossStoreSync.Cli.Commands;

/// <summary>Runs a check of each requested collection, with a live progress display per store unless the output is JSON.</summary>
internal static class ConsistencyRunner
{
    public static IReadOnlyList<string> Collections(SyncSession session, CheckSettings settings)
    {
        var configured = session.Options.Collections.Select(c => c.Name).ToArray();
        foreach (var name in settings.Collections)
        {
            if (!configured.Contains(name, StringComparer.Ordinal))
            {
                throw new CliException($"--collection is {SafeText.Quote(name)}, which is not configured; configured: {string.Join(", ", configured)}.");
            }
        }

        return settings.Collections.Length > 0 ? settings.Collections : configured;
    }

    public static async Task<IReadOnlyList<ConsistencyReport>> CheckAsync(SyncSession session, CheckSettings settings, IReadOnlyList<string> collections, string title, CancellationToken cancellationToken)
    {
        var options = settings.ToOptions();
        var reports = new List<ConsistencyReport>(collections.Count);
        if (settings.Json)
        {
            foreach (var collection in collections)
            {
                reports.Add(await session.Checker.CheckAsync(collection, options, null, cancellationToken).ConfigureAwait(false));
            }

            return reports;
        }

        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                foreach (var collection in collections)
                {
                    var display = new StoreProgress(context, $"{title} {collection}");
                    reports.Add(await session.Checker.CheckAsync(collection, options, display, cancellationToken).ConfigureAwait(false));
                    display.Complete();
                }
            }).ConfigureAwait(false);
        return reports;
    }

    /// <summary>One progress line per store, updated from the checker's threads (Spectre's tasks are thread-safe).</summary>
    private sealed class StoreProgress(ProgressContext context, string title) : IProgress<ConsistencyProgress>
    {
        private readonly Dictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);
        private readonly Lock _gate = new();

        public void Report(ConsistencyProgress value)
        {
            ProgressTask task;
            lock (_gate)
            {
                if (!_tasks.TryGetValue(value.Store, out task!))
                {
                    task = context.AddTask(Describe(value), maxValue: 1);
                    task.IsIndeterminate = true;
                    _tasks[value.Store] = task;
                }
            }

            task.Description = Describe(value);
            if (value.Phase == "done")
            {
                task.IsIndeterminate = false;
                task.Value = task.MaxValue;
            }
            else if (value.BucketsTotal > 0)
            {
                task.IsIndeterminate = false;
                task.MaxValue = value.BucketsTotal;
                task.Value = value.BucketsDone;
            }
        }

        public void Complete()
        {
            lock (_gate)
            {
                foreach (var task in _tasks.Values)
                {
                    task.IsIndeterminate = false;
                    task.Value = task.MaxValue;
                    task.StopTask();
                }
            }
        }

        private string Describe(ConsistencyProgress value) =>
            $"{Markup.Escape(title)} → [bold]{Markup.Escape(value.Store)}[/] {value.Phase} ({Format.Number(value.EntriesRead)} read{(value.BucketsTotal > 0 ? $", {Format.Number(value.BucketsDone)}/{Format.Number(value.BucketsTotal)} buckets" : "")})";
    }
}
