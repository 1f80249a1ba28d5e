using Xunit.Abstractions;

namespace CrossStoreSync.Peering.Tests.Harness;

/// <summary>A node SIGKILLed while it applies a stream of states, just before and just after a batch commits.</summary>
[Collection("harness")]
public sealed class CrashTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("before-commit:3")]
    [InlineData("after-commit:3")]
    public async Task A_node_killed_mid_stream_converges_after_restart_with_nothing_lost_or_applied_twice(string plan)
    {
        await using var cluster = new HarnessCluster(2);
        var sender = await cluster.StartAsync(0, "--chunk", "256");

        // 2,000 entities: eight chunks of 256; the receiver dies around its third.
        var load = await sender.SendAsync("load 2000 e", TimeSpan.FromMinutes(3));
        Assert.Equal(2000, load.GetProperty("last").GetInt64());
        await cluster.StartAsync(1, "--crash", plan, "--chunk", "256");
        await cluster.ReapAsync(1); // it kills itself with SIGKILL at the planned commit

        var receiver = await cluster.StartAsync(1, "--chunk", "256");
        await receiver.SendAsync("sync 1", TimeSpan.FromMinutes(3));
        await sender.SendAsync("sync 2", TimeSpan.FromMinutes(3));

        var expected = await cluster.DumpAsync(0);
        var actual = await cluster.DumpAsync(1);
        Assert.Equal(2000, expected.Count);
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), actual.OrderBy(p => p.Key, StringComparer.Ordinal));

        // Exactly one log entry per entity on the receiver: what it committed before the crash was not applied again.
        var counts = await receiver.SendAsync("counts");
        var head = counts.GetProperty("head").GetInt64();
        output.WriteLine($"{plan}: receiver log head {head}, this run wrote {counts.GetProperty("replicated").GetInt64()} after restart");
        Assert.Equal(2000, head);
        Assert.Equal(2000, (await sender.SendAsync("counts")).GetProperty("head").GetInt64()); // and nothing echoed back

        var check = await receiver.SendAsync("check", TimeSpan.FromMinutes(2));
        Assert.True(check.GetProperty("consistent").GetBoolean());
    }
}
