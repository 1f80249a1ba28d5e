using System.Globalization;
using System.Text.Json;
using CrossStoreSync.FaultProxy;
using Xunit.Abstractions;

namespace CrossStoreSync.Peering.Tests.Harness;

/// <summary>
/// Seeded random histories on 3–5 real node processes behind TCP fault proxies: writes and deletes under delay, resets
/// and one-way loss, then a partition with writes on both sides (the same keys included), then heal. A checker then
/// requires what replication promises (issue 12): equal Merkle roots and clean deep checks, every acknowledged write
/// present or superseded by a newer (HLC, node) version, every concurrent pair recorded as a conflict, no resurrected
/// delete, no version going backwards, no echo. CI runs a few seeds; <c>eng/peer-harness.sh</c> runs many more.
/// </summary>
[Collection("harness")]
public sealed class ConvergenceTests(ITestOutputHelper output)
{
    private const int Keys = 16;

    public static TheoryData<int> Seeds()
    {
        var data = new TheoryData<int>();
        var configured = Environment.GetEnvironmentVariable("CSS_HARNESS_SEEDS");
        foreach (var seed in configured is null ? [11, 23, 37] : configured.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)))
        {
            data.Add(seed);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Random_histories_with_faults_and_a_partition_converge_with_nothing_lost(int seed)
    {
        var random = new Random(seed);
        var nodes = int.TryParse(Environment.GetEnvironmentVariable("CSS_HARNESS_NODES"), out var n) ? n : 3;
        var offsets = Enumerable.Range(0, nodes).Select(_ => (long)random.Next(-3000, 3000)).ToArray();
        await using var cluster = new HarnessCluster(nodes, offsets);
        await cluster.StartAllAsync();
        var acked = new List<Write>();
        var history = new List<Dictionary<string, (long Version, string Hash, bool Deleted)>[]>();

        // Phase 1: connected, with per-link delay, resets and short one-way loss.
        for (var op = 0; op < 40; op++)
        {
            if (random.Next(5) == 0)
            {
                Fault(cluster, random);
            }

            acked.Add(await WriteAsync(cluster, random.Next(nodes), "k" + random.Next(Keys).ToString(CultureInfo.InvariantCulture), random, op));
        }

        cluster.Mesh.HealAll();
        history.Add(await DumpAllAsync(cluster));

        // Phase 2: a partition. Two writers (one per side) take the contested keys; everyone writes the others.
        var order = Enumerable.Range(0, nodes).OrderBy(_ => random.Next()).ToArray();
        var split = random.Next(1, nodes);
        var sideA = order[..split];
        var sideB = order[split..];
        cluster.Mesh.PartitionGroups(sideA, sideB, random.Next(2) == 0 ? PartitionMode.Stall : PartitionMode.Reset);
        var contested = Enumerable.Range(0, 4).Select(i => "c" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var sideFinal = new Dictionary<(string Key, int Side), Write>();
        var sideWrites = new Dictionary<(string Key, int Side), List<long>>();
        for (var op = 0; op < 40; op++)
        {
            if (op % 3 == 0)
            {
                var key = contested[random.Next(contested.Length)];
                var side = random.Next(2);
                var write = await WriteAsync(cluster, side == 0 ? sideA[0] : sideB[0], key, random, 100 + op);
                acked.Add(write);
                sideFinal[(key, side)] = write;
                (sideWrites.TryGetValue((key, side), out var list) ? list : sideWrites[(key, side)] = []).Add(write.Version);
            }
            else
            {
                acked.Add(await WriteAsync(cluster, random.Next(nodes), "k" + random.Next(Keys).ToString(CultureInfo.InvariantCulture), random, 100 + op));
            }
        }

        history.Add(await DumpAllAsync(cluster));

        // Heal and converge.
        cluster.Mesh.HealAll();
        foreach (var proxy in cluster.Mesh.Proxies)
        {
            proxy.Delay(Direction.Upstream, TimeSpan.Zero);
            proxy.Delay(Direction.Downstream, TimeSpan.Zero);
        }

        var rounds = await cluster.ConvergeAsync();
        var final = await DumpAllAsync(cluster);
        history.Add(final);
        output.WriteLine($"seed {seed}: {nodes} nodes, sides [{string.Join(",", sideA.Select(i => i + 1))}] / [{string.Join(",", sideB.Select(i => i + 1))}], {acked.Count} writes, converged in {rounds} round(s)");

        // Every node holds exactly the same states.
        for (var i = 1; i < nodes; i++)
        {
            Assert.Equal(final[0].OrderBy(p => p.Key, StringComparer.Ordinal), final[i].OrderBy(p => p.Key, StringComparer.Ordinal));
        }

        // Each node's own stores agree with its source (deep check after its replicas caught up).
        foreach (var index in Enumerable.Range(0, nodes))
        {
            var check = await cluster[index].SendAsync("check", TimeSpan.FromMinutes(2));
            Assert.True(check.GetProperty("synced").GetBoolean(), $"node {index + 1}: replicas did not catch up");
            Assert.True(check.GetProperty("consistent").GetBoolean(), $"node {index + 1}: deep check found {check.GetProperty("findings")}");
        }

        // Every acknowledged write is there or superseded by a newer version; the newest one wins (a delete stays deleted).
        foreach (var group in acked.GroupBy(w => w.Key))
        {
            var newest = group.MaxBy(w => w.Version)!;
            var state = final[0][group.Key];
            Assert.True(state.Version == newest.Version, $"{group.Key}: holds version {state.Version}, the newest acknowledged write is {newest.Version} (node {newest.Node})");
            Assert.Equal(newest.Hash, state.Hash);
            Assert.Equal(newest.Deleted, state.Deleted);
        }

        // Every pair of concurrent writes is a recorded conflict: the two sides' last writes of a contested key never
        // saw each other, so the losing one must be on record as lost to a write of the other side. (It may have lost to
        // an earlier write of that side that crossed first; the later ones then supersede that winner, not the loser.)
        var conflicts = new List<JsonElement>();
        foreach (var index in Enumerable.Range(0, nodes))
        {
            conflicts.AddRange((await cluster[index].SendAsync("conflicts")).GetProperty("conflicts").EnumerateArray());
        }

        foreach (var key in contested)
        {
            if (sideFinal.TryGetValue((key, 0), out var a) && sideFinal.TryGetValue((key, 1), out var b))
            {
                var (loser, winnerSide) = a.Version < b.Version ? (a, 1) : (b, 0);
                var winners = sideWrites[(key, winnerSide)];
                Assert.True(
                    conflicts.Any(c => c.GetProperty("id").GetString() == key && c.GetProperty("loser").GetInt64() == loser.Version && winners.Contains(c.GetProperty("winner").GetInt64())),
                    $"{key}: the concurrent versions {a.Version} (node {a.Node}) and {b.Version} (node {b.Node}) were never recorded as a conflict; recorded: "
                    + string.Join("; ", conflicts.Where(c => c.GetProperty("id").GetString() == key).Select(c => c.GetRawText()))
                    + "; writes: " + string.Join("; ", acked.Where(w => w.Key == key).Select(w => $"{w.Version}@{w.Node}")));
            }
        }

        // No version went backwards on any node between the snapshots.
        for (var snapshot = 1; snapshot < history.Count; snapshot++)
        {
            for (var i = 0; i < nodes; i++)
            {
                foreach (var (key, before) in history[snapshot - 1][i])
                {
                    Assert.True(history[snapshot][i].TryGetValue(key, out var after) && after.Version >= before.Version, $"node {i + 1}: {key} went from {before.Version} back to {(history[snapshot][i].TryGetValue(key, out var x) ? x.Version : 0)}");
                }
            }
        }

        // No echo: each log holds this node's own writes and the states it accepted, nothing else.
        foreach (var index in Enumerable.Range(0, nodes))
        {
            var counts = await cluster[index].SendAsync("counts");
            Assert.Equal(counts.GetProperty("own").GetInt64() + counts.GetProperty("replicated").GetInt64(), counts.GetProperty("head").GetInt64());
        }
    }

    private static void Fault(HarnessCluster cluster, Random random)
    {
        var from = random.Next(cluster.Count);
        var to = (from + 1 + random.Next(cluster.Count - 1)) % cluster.Count;
        var proxy = cluster.Mesh.Proxy(from, to);
        var direction = random.Next(2) == 0 ? Direction.Upstream : Direction.Downstream;
        switch (random.Next(4))
        {
            case 0:
                proxy.Delay(direction, TimeSpan.FromMilliseconds(random.Next(1, 40)));
                break;
            case 1:
                proxy.ResetAll();
                break;
            case 2:
                proxy.Blackhole(direction);
                break;
            default:
                proxy.Heal();
                break;
        }
    }

    private static async Task<Write> WriteAsync(HarnessCluster cluster, int node, string key, Random random, int op)
    {
        var delete = random.Next(6) == 0;
        var answer = delete
            ? await cluster[node].SendAsync("delete " + key)
            : await cluster[node].SendAsync($"write {key} op{op} by node{node + 1}");
        return new Write(node + 1, key, answer.GetProperty("version").GetInt64(), delete ? new string('0', 32) : answer.GetProperty("hash").GetString()!, delete);
    }

    private static async Task<Dictionary<string, (long Version, string Hash, bool Deleted)>[]> DumpAllAsync(HarnessCluster cluster) =>
        await Task.WhenAll(Enumerable.Range(0, cluster.Count).Select(cluster.DumpAsync));

    private sealed record Write(int Node, string Key, long Version, string Hash, bool Deleted);
}
