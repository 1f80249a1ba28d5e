using System.Diagnostics;
using System.Globalization;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;

namespace CrossStoreSync.Tests.Shared;

/// <summary>What a soak run measured.</summary>
/// <param name="Changes">Changes written (upserts and deletes).</param>
/// <param name="Seconds">Wall time of the writes until the last one was synced everywhere.</param>
/// <param name="MaxLogRows">The most log rows seen at any sample.</param>
/// <param name="EndLogRows">Log rows at the end, after a last retention round.</param>
/// <param name="StartBytes">Database bytes when the writes started.</param>
/// <param name="QuarterBytes">Database bytes a quarter of the way in (the key space and the log are at their steady size by then).</param>
/// <param name="PeakBytes">The most database bytes seen after the first quarter.</param>
/// <param name="EndBytes">Database bytes at the end.</param>
/// <param name="Samples">How many samples were taken.</param>
public sealed record SoakFigures(long Changes, double Seconds, long MaxLogRows, long EndLogRows, long StartBytes, long QuarterBytes, long PeakBytes, long EndBytes, int Samples)
{
    public double ChangesPerSecond => Changes / Math.Max(Seconds, 1e-9);

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Changes:N0} changes in {Seconds:F1} s ({ChangesPerSecond:N0}/s); log rows max {MaxLogRows:N0}, end {EndLogRows:N0}; bytes start {StartBytes:N0}, at 25% {QuarterBytes:N0}, peak after {PeakBytes:N0}, end {EndBytes:N0}; {Samples} samples");
}

/// <summary>
/// Sustained writes over a small key space with log retention on: batches of upserts, and every tenth batch deletes a
/// few keys (tombstones to purge). Samples the log's row count and the database size as it goes. The number of changes
/// comes from <c>CSS_SOAK_CHANGES</c> (eng/soak.sh sets 1,000,000; CI runs the short default).
/// </summary>
public static class RetentionSoak
{
    public const int Keys = 2_000;
    private const int BatchSize = 200;

    /// <summary>The number of changes: <c>CSS_SOAK_CHANGES</c> or the short default.</summary>
    public static int Changes(int shortDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("CSS_SOAK_CHANGES"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : shortDefault;

    /// <summary>Appends a line to the file named by <c>CSS_SOAK_REPORT</c>, when set (eng/soak.sh collects the figures so).</summary>
    public static void Report(string name, SoakFigures figures)
    {
        if (Environment.GetEnvironmentVariable("CSS_SOAK_REPORT") is { Length: > 0 } path)
        {
            File.AppendAllText(path, $"{name}: {figures}{Environment.NewLine}");
        }
    }

    public static async Task<SoakFigures> RunAsync(ISyncManager manager, int changes, Func<Task<long>> countLogRows, Func<Task<long>> databaseBytes, Func<Task> lastRound)
    {
        var document = new string('x', 400);
        var watch = Stopwatch.StartNew();
        var startBytes = await databaseBytes();
        long written = 0, maxRows = 0, quarterBytes = -1, peakBytes = 0;
        var samples = 0;
        var nextSample = 0L;
        var batch = new SyncEntity[BatchSize];
        var round = 0;
        SyncTicket last = default;
        while (written < changes)
        {
            for (var i = 0; i < batch.Length; i++)
            {
                var id = (int)((written + i) % Keys);
                batch[i] = SyncEntity.FromJson(new EntityKey("items", "k" + id), $"{{\"n\":{written + i},\"text\":\"{document}\"}}", new float[] { round, id, 1, 2 });
            }

            last = await manager.WriteBatchAsync(batch);
            written += batch.Length;
            if (++round % 10 == 0)
            {
                for (var d = 0; d < 5; d++)
                {
                    last = await manager.DeleteAsync(new EntityKey("items", "k" + ((round * 7 + d * 13) % Keys)));
                    written++;
                }
            }

            if (written >= nextSample)
            {
                // Wait for the replicas now and then, so the writers cannot run ahead of them without bound.
                await manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(2));
                samples++;
                maxRows = Math.Max(maxRows, await countLogRows());
                var bytes = await databaseBytes();
                if (quarterBytes < 0 && written >= changes / 4)
                {
                    quarterBytes = bytes;
                }
                else if (quarterBytes >= 0)
                {
                    peakBytes = Math.Max(peakBytes, bytes);
                }

                nextSample = written + Math.Max(BatchSize, changes / 40);
            }
        }

        var outcome = await manager.WaitForSyncAsync(last, TimeSpan.FromMinutes(5));
        if (outcome != SyncWaitOutcome.Synced)
        {
            throw new InvalidOperationException($"The soak's last write did not sync: {outcome}.");
        }

        var seconds = watch.Elapsed.TotalSeconds;
        await lastRound();
        var endRows = await countLogRows();
        var endBytes = await databaseBytes();
        return new SoakFigures(written, seconds, Math.Max(maxRows, endRows), endRows, startBytes, Math.Max(quarterBytes, 0), Math.Max(peakBytes, endBytes), endBytes, samples);
    }
}
