using CrossStoreSync.Consistency;
using Spectre.Console;

namespace CrossStoreSync.Cli.Output;

/// <summary>Consistency reports as tables and as JSON.</summary>
internal static class ReportView
{
    public static void Render(IAnsiConsole console, ConsistencyReport report, int show)
    {
        var state = report.IsConsistent ? "[green]consistent[/]" : "[red]differences found[/]";
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(report.Collection)}[/]: {Markup.Escape(report.Source)} vs replicas — {report.Mode}{(report.Deep ? ", deep" : "")}, {Format.Number(report.SourceEntities)} source entities, {Format.Duration(report.Duration)} — {state}");
        table.AddColumns("Store", "Consistent", "Missing", "Orphaned", "Stale", "Corrupted", "Entries read", "Buckets differing");
        foreach (var s in report.Stores)
        {
            table.AddRow(
                Markup.Escape(s.Store),
                Format.Number(s.Consistent),
                Count(s.Missing),
                Count(s.Orphaned),
                Count(s.Stale),
                Count(s.Corrupted),
                Format.Number(s.EntriesRead),
                $"{Format.Number(s.BucketsDiffering)} of {Format.Number(s.BucketsCompared)}");
        }

        console.Write(table);
        foreach (var s in report.Stores.Where(s => s.Estimate is not null))
        {
            var e = s.Estimate!;
            console.MarkupLine($"{Markup.Escape(s.Store)}: sampled {Format.Number(e.SampledEntities)} entities, rate {e.Rate:P3} ({e.Lower:P3} .. {e.Upper:P3} at {e.ConfidenceLevel:P0}), about {Format.Number(e.EstimatedInconsistent)} inconsistent in all.");
        }

        var findings = report.Stores.SelectMany(s => s.Findings.Take(show).Select(f => (s.Store, Finding: f))).ToArray();
        if (findings.Length > 0)
        {
            var list = new Table().Border(TableBorder.Simple).Title("Findings");
            list.AddColumns("Store", "Key", "Kind", "Source version", "Store version");
            foreach (var (store, f) in findings)
            {
                list.AddRow(Markup.Escape(store), Format.Key(f.Key), f.Kind.ToString(), Format.Version(f.SourceVersion), Format.Version(f.StoreVersion));
            }

            console.Write(list);
            foreach (var s in report.Stores.Where(s => s.Inconsistent > Math.Min(show, s.Findings.Count) || s.FindingsTruncated))
            {
                console.MarkupLine($"[grey]{Markup.Escape(s.Store)}: {Format.Number(s.Inconsistent)} findings in all{(s.FindingsTruncated ? " (more than the report lists: check and repair again afterwards)" : "")}; --show N lists more.[/]");
            }
        }
    }

    public static object ToJson(ConsistencyReport report) => new
    {
        collection = report.Collection,
        source = report.Source,
        mode = report.Mode,
        deep = report.Deep,
        range = new { first = report.Range.First, last = report.Range.Last },
        sourceEntities = report.SourceEntities,
        durationMs = report.Duration.TotalMilliseconds,
        consistent = report.IsConsistent,
        stores = report.Stores.Select(s => new
        {
            store = s.Store,
            consistent = s.Consistent,
            missing = s.Missing,
            orphaned = s.Orphaned,
            stale = s.Stale,
            corrupted = s.Corrupted,
            inconsistent = s.Inconsistent,
            findingsTruncated = s.FindingsTruncated,
            entriesRead = s.EntriesRead,
            bytesRead = s.BytesRead,
            bucketsCompared = s.BucketsCompared,
            bucketsDiffering = s.BucketsDiffering,
            estimate = s.Estimate,
            findings = s.Findings.Select(f => new { collection = f.Key.Collection, id = f.Key.Id, kind = f.Kind, sourceVersion = f.SourceVersion?.Value, storeVersion = f.StoreVersion?.Value }),
        }),
    };

    private static string Count(long value) => value == 0 ? "0" : $"[red]{Format.Number(value)}[/]";
}
