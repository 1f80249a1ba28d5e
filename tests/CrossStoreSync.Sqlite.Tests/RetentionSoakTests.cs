using CrossStoreSync.Retention;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>
/// Sustained writes over a small key space with retention on: the log's row count and the files' size stay bounded.
/// CI runs the short default; <c>eng/soak.sh</c> runs 1,000,000 changes with the same assertions.
/// </summary>
public sealed class RetentionSoakTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Log rows never exceed this, whatever the number of changes: a few retention windows of writes.</summary>
    public const long MaxLogRows = 30_000;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Log_rows_and_file_sizes_stay_bounded_under_sustained_writes()
    {
        var changes = RetentionSoak.Changes(40_000);
        await using var engine = await TestEngine.StartAsync(
            b => b.UseSqlite(o => o.DirectoryPath = _dir.Path),
            o =>
            {
                o.DispatchBatchSize = 1000;
                o.Retention.KeepAppliedFor = TimeSpan.FromMilliseconds(250);
                o.Retention.TruncationInterval = TimeSpan.FromMilliseconds(100);
                o.Retention.TruncationBatchSize = 2000;
                o.Retention.TombstoneRetention = TimeSpan.FromSeconds(1);
            });
        var log = engine.Services.GetRequiredService<SqliteChangeLog>();
        var vectors = engine.Services.GetRequiredService<SqliteVectorStore>();
        var graph = engine.Services.GetRequiredService<SqliteGraphStore>();
        var retention = engine.Services.GetRequiredService<LogRetention>();

        var figures = await RetentionSoak.RunAsync(
            engine.Manager,
            changes,
            async () => await log.CountEntriesAsync(CancellationToken.None),
            () => Task.FromResult(log.FileBytes() + vectors.FileBytes() + graph.FileBytes()),
            () => retention.RunRoundAsync(CancellationToken.None));
        output.WriteLine($"SQLite: {figures}");
        RetentionSoak.Report("SQLite", figures);

        Assert.True(figures.MaxLogRows <= MaxLogRows, $"The log held {figures.MaxLogRows} rows; the bound is {MaxLogRows}. {figures}");
        Assert.True(figures.PeakBytes <= (figures.QuarterBytes * 3 / 2) + (8L << 20), $"The files grew past their size at a quarter of the run. {figures}");
        Assert.True(figures.EndBytes <= (figures.QuarterBytes * 3 / 2) + (8L << 20), figures.ToString());
    }
}
