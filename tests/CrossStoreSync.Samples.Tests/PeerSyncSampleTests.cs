using PeerSync;

namespace CrossStoreSync.Samples.Tests;

/// <summary>Runs samples/PeerSync: three nodes, a partition, a conflict, convergence.</summary>
public sealed class PeerSyncSampleTests
{
    [Fact]
    public async Task Three_nodes_converge_after_a_partition_with_the_conflict_recorded_and_it_exits_0()
    {
        var output = new StringWriter();
        var code = await PeerSyncApp.RunAsync([], output);

        var text = output.ToString();
        Assert.True(code == 0, $"Exit code {code}:\n{text}");
        Assert.Contains("recorded conflict", text, StringComparison.Ordinal);
        Assert.Contains("Every node keeps the last writer's version", text, StringComparison.Ordinal);
        Assert.Contains("All nodes agree.", text, StringComparison.Ordinal);
        Assert.Equal(3, text.Split('\n').Count(line => line.Contains("191   191", StringComparison.Ordinal) && line.Contains("clean", StringComparison.Ordinal)));
    }
}
