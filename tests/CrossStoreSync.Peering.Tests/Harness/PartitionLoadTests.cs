using System.Diagnostics;
using System.Globalization;
using CrossStoreSync.FaultProxy;
using Xunit.Abstractions;

namespace CrossStoreSync.Peering.Tests.Harness;

/// <summary>
/// Convergence after healing a partition under a steady write load on both sides (issue 12: a 60 s partition under
/// 1,000 writes/s converges within 10 s). CI runs a short one; <c>eng/peer-harness.sh partition</c> runs the full one
/// (CSS_HARNESS_PARTITION_SECONDS=60, CSS_HARNESS_RATE=1000) and the figures go to benchmarks/README.md.
/// </summary>
[Collection("harness")]
public sealed class PartitionLoadTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Nodes_converge_after_a_partition_under_steady_load()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("CSS_HARNESS_PARTITION_SECONDS"), out var s) ? s : 3;
        var rate = int.TryParse(Environment.GetEnvironmentVariable("CSS_HARNESS_RATE"), out var r) ? r : 200;
        await using var cluster = new HarnessCluster(3);
        await cluster.StartAllAsync();

        // Nodes 1 and 2 on one side, node 3 on the other; both sides write at half the rate, partly the same keys.
        cluster.Mesh.PartitionGroups([0, 1], [2], PartitionMode.Stall);
        var duration = (seconds * 1000).ToString(CultureInfo.InvariantCulture);
        var half = (rate / 2).ToString(CultureInfo.InvariantCulture);
        var keys = (rate * seconds / 4).ToString(CultureInfo.InvariantCulture);
        var loads = await Task.WhenAll(
            cluster[0].SendAsync($"stream {duration} {half} p {keys}", TimeSpan.FromSeconds(seconds + 120)),
            cluster[2].SendAsync($"stream {duration} {half} p {keys}", TimeSpan.FromSeconds(seconds + 120)));
        var written = loads.Sum(l => l.GetProperty("written").GetInt64());

        cluster.Mesh.HealAll();
        var clock = Stopwatch.StartNew();
        var rounds = await cluster.ConvergeAsync();
        var converged = clock.Elapsed;
        output.WriteLine($"partition {seconds} s at {rate} writes/s ({written} writes, {keys} keys per side, shared): converged {converged.TotalSeconds:0.0} s after healing, {rounds} round(s) of pulls");

        var dumps = await Task.WhenAll(Enumerable.Range(0, 3).Select(cluster.DumpAsync));
        Assert.Equal(dumps[0].OrderBy(p => p.Key, StringComparer.Ordinal), dumps[2].OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(dumps[0].OrderBy(p => p.Key, StringComparer.Ordinal), dumps[1].OrderBy(p => p.Key, StringComparer.Ordinal));
        foreach (var index in Enumerable.Range(0, 3))
        {
            var counts = await cluster[index].SendAsync("counts");
            Assert.Equal(counts.GetProperty("own").GetInt64() + counts.GetProperty("replicated").GetInt64(), counts.GetProperty("head").GetInt64());
        }
    }
}
