using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>Every replication instrument is published with its unit and reports what happened.</summary>
public sealed class TelemetryTests : IAsyncLifetime, IDisposable
{
    private static readonly Dictionary<string, string> Expected = new(StringComparer.Ordinal)
    {
        ["crossstoresync.replication.states"] = "{state}",
        ["crossstoresync.replication.conflicts"] = "{conflict}",
        ["crossstoresync.peer.states_received"] = "{state}",
        ["crossstoresync.peer.bytes"] = "By",
        ["crossstoresync.peer.errors"] = "{error}",
        ["crossstoresync.peer.repair.keys"] = "{entity}",
        ["crossstoresync.peer.lag"] = "{entry}",
        ["crossstoresync.peer.lag.time"] = "s",
    };

    private readonly TestCluster _cluster = new(2);
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, string?> _published = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _sums = new(StringComparer.Ordinal);

    public TelemetryTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (Expected.ContainsKey(instrument.Name))
            {
                _published[instrument.Name] = instrument.Unit;
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i.Name, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i.Name, v, tags));
        _listener.Start();
    }

    private void Record(string name, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        _sums.AddOrUpdate(name, value, (_, old) => old + value);
        foreach (var tag in tags)
        {
            _sums.AddOrUpdate($"{name}/{tag.Key}={tag.Value}", value, (_, old) => old + value);
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    public void Dispose() => _listener.Dispose();

    [Fact]
    public async Task Replication_instruments_are_published_and_count_what_happened()
    {
        // A conflict: each node writes "x" while the other is down.
        var a = await _cluster.StartAsync(1);
        await a.Manager.WriteBatchAsync([Note("x", "from a"), Note("y", "from a")]);
        await a.StopAsync();
        var b = await _cluster.StartAsync(2);
        await b.Manager.WriteAsync(Note("x", "from b"));
        await b.StopAsync();
        a = await _cluster.StartAsync(1);
        b = await _cluster.StartAsync(2);
        await b.Peering.SyncNowAsync(1);
        await a.Peering.SyncNowAsync(2);
        await b.Peering.RepairAsync(1); // nothing differs now, but the repair runs
        await a.StopAsync(); // b's next exchange with a fails
        await Assert.ThrowsAnyAsync<Exception>(() => b.Peering.SyncNowAsync(1).WaitAsync(TimeSpan.FromSeconds(20)));
        while (b.StatusOf(1).LastErrorCode is null)
        {
            await Assert.ThrowsAnyAsync<Exception>(() => b.Peering.SyncNowAsync(1).WaitAsync(TimeSpan.FromSeconds(20)));
        }

        _listener.RecordObservableInstruments();

        Assert.Equal(Expected.OrderBy(p => p.Key), _published.OrderBy(p => p.Key).Select(p => new KeyValuePair<string, string>(p.Key, p.Value!)));
        Assert.True(Sum("crossstoresync.replication.states/outcome=written") >= 2, Describe());
        Assert.True(Sum("crossstoresync.replication.conflicts/collection=notes") >= 1, Describe());
        // Which node pulls first is a race of the two background loops: when node 1 has already taken node 2's winning
        // "x", its log's "x" is node 2's state and is not echoed back, so node 2 receives only "y". Each node receives
        // at least one state from the other either way, and two between them.
        Assert.True(Sum("crossstoresync.peer.states_received/peer=1") >= 1 && Sum("crossstoresync.peer.states_received/peer=2") >= 1, Describe());
        Assert.True(Sum("crossstoresync.peer.states_received") >= 2, Describe());
        Assert.True(Sum("crossstoresync.peer.bytes/direction=received") > 0 && Sum("crossstoresync.peer.bytes/direction=sent") > 0, Describe());
        Assert.True(Sum("crossstoresync.peer.errors/peer=1") >= 1, Describe());
        Assert.True(_sums.ContainsKey("crossstoresync.peer.lag/peer=1") && _sums.ContainsKey("crossstoresync.peer.lag.time/peer=1"), Describe());
    }

    private double Sum(string key) => _sums.TryGetValue(key, out var value) ? value : 0;

    private string Describe() => string.Join(", ", _sums.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"));
}
