using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using CrossStoreSync.Consistency;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Peering;
using CrossStoreSync.Replication;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.PeerNode;

/// <summary>The commands a node answers (one JSON line each).</summary>
internal sealed class NodeCommands
{
    private readonly ISyncManager _manager;
    private readonly IPeerReplication _peering;
    private readonly IReplicationWriter _writer;
    private readonly IConsistencyChecker _checker;
    private readonly NodeArguments _options;
    private readonly OffsetClock _clock;
    private readonly MeterListener _listener = new();
    private long _ownEntries;
    private long _replicatedWritten;

    public NodeCommands(IServiceProvider services, NodeArguments options, OffsetClock clock)
    {
        _manager = services.GetRequiredService<ISyncManager>();
        _peering = services.GetRequiredService<IPeerReplication>();
        _writer = services.GetRequiredService<IReplicationWriter>();
        _checker = services.GetRequiredService<IConsistencyChecker>();
        _options = options;
        _clock = clock;

        // Counts the states this node wrote because a peer sent them: with its own writes, all its log may hold.
        _listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "crossstoresync.replication.states")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "outcome" && (string?)tag.Value == "written")
                {
                    Interlocked.Add(ref _replicatedWritten, value);
                }
            }
        });
        _listener.Start();
    }

    public static SyncEntity Note(string id, string text) => SyncEntity.FromJson(
        new EntityKey("notes", id),
        JsonSerializer.Serialize(new { text }),
        new float[] { 1, text.Length, 3, 4 },
        [new SyncEdge("LINKS", new EntityKey("notes", "hub"))]);

    public async Task<string> RunAsync(string line)
    {
        var parts = line.Split(' ', 3);
        switch (parts[0])
        {
            case "write":
                {
                    var note = Note(parts[1], parts.Length > 2 ? parts[2] : string.Empty);
                    return Ticket(await _manager.WriteAsync(note), EntityEncoding.ComputeContentHash(note));
                }

            case "delete":
                return Ticket(await _manager.DeleteAsync(new EntityKey("notes", parts[1])), UInt128.Zero);
            case "stream":
                {
                    // stream <milliseconds> <writes per second> <prefix> <keys>: a steady load of small batches every 10 ms.
                    var args = line.Split(' ');
                    var duration = TimeSpan.FromMilliseconds(long.Parse(args[1], CultureInfo.InvariantCulture));
                    var rate = int.Parse(args[2], CultureInfo.InvariantCulture);
                    var keys = int.Parse(args[4], CultureInfo.InvariantCulture);
                    var started = System.Diagnostics.Stopwatch.StartNew();
                    using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
                    var written = 0;
                    var sequence = 0;
                    SyncTicket last = default;
                    while (started.Elapsed < duration && await timer.WaitForNextTickAsync())
                    {
                        var due = (int)(started.Elapsed.TotalSeconds * rate) - written;
                        if (due <= 0)
                        {
                            continue;
                        }

                        var batch = Enumerable.Range(0, due).Select(_ => Note(args[3] + (sequence++ % keys).ToString(CultureInfo.InvariantCulture), "s" + sequence.ToString(CultureInfo.InvariantCulture)))
                            .DistinctBy(n => n.Key).ToArray();
                        last = await _manager.WriteBatchAsync(batch);
                        Interlocked.Add(ref _ownEntries, last.Lsns.Count);
                        written += due;
                    }

                    return JsonSerializer.Serialize(new { ok = true, written, last = last.Lsns.Last });
                }
            case "load":
                {
                    // load <count> <prefix>: batches of 100 entities with ~1 KB documents.
                    var count = int.Parse(parts[1], CultureInfo.InvariantCulture);
                    var text = new string('x', 900);
                    SyncTicket last = default;
                    for (var i = 0; i < count; i += 100)
                    {
                        var batch = Enumerable.Range(i, Math.Min(100, count - i)).Select(k => Note(parts[2] + k.ToString(CultureInfo.InvariantCulture), text)).ToArray();
                        last = await _manager.WriteBatchAsync(batch);
                        Interlocked.Add(ref _ownEntries, last.Lsns.Count);
                    }

                    return JsonSerializer.Serialize(new { ok = true, last = last.Lsns.Last });
                }

            case "dump":
                return JsonSerializer.Serialize(new { ok = true, states = await DumpAsync() });
            case "root":
                {
                    var states = await DumpAsync();
                    var tree = new MerkleTree(MerkleTree.MinDepth);
                    foreach (var s in states)
                    {
                        var keyHash = KeyHash.Compute("notes", s.Id);
                        tree.Add(keyHash, EntityDigestHash.Compute(keyHash, s.Version, UInt128.Parse(s.Hash, NumberStyles.HexNumber, CultureInfo.InvariantCulture), s.Deleted ? UInt128.One : UInt128.Zero));
                    }

                    return JsonSerializer.Serialize(new { ok = true, root = tree.Root.ToString("X32", CultureInfo.InvariantCulture), count = states.Count });
                }

            case "check":
                {
                    // This node's own stores: wait until its replicas applied its whole log, then a deep check.
                    var head = _writer.Head;
                    var synced = head == 0 || await _manager.WaitForSyncAsync(new SyncTicket(new LsnRange(1, head), default), TimeSpan.FromSeconds(60)) == SyncWaitOutcome.Synced;
                    var report = await _checker.CheckAsync("notes", new ConsistencyCheckOptions { Deep = true });
                    return JsonSerializer.Serialize(new { ok = true, synced, consistent = report.IsConsistent, findings = report.Stores.Sum(s => s.Inconsistent) });
                }

            case "conflicts":
                {
                    var list = await _peering.GetConflictsAsync(maxCount: 100_000);
                    return JsonSerializer.Serialize(new { ok = true, conflicts = list.Select(c => new { id = c.Key.Id, winner = c.Winner.Value, loser = c.Loser.Version.Value, peer = c.PeerNodeId, resolution = c.Resolution.ToString() }) });
                }

            case "status":
                return JsonSerializer.Serialize(new { ok = true, peers = _peering.GetStatus() });
            case "sync":
                await _peering.SyncNowAsync(int.Parse(parts[1], CultureInfo.InvariantCulture));
                return """{"ok":true}""";
            case "syncall":
                foreach (var peer in _options.Peers)
                {
                    await _peering.SyncNowAsync(peer.Id);
                }

                return """{"ok":true}""";
            case "repair":
                {
                    var report = await _peering.RepairAsync(int.Parse(parts[1], CultureInfo.InvariantCulture));
                    return JsonSerializer.Serialize(new { ok = true, written = report.Written, bytes = report.BytesReceived + report.BytesSent, trips = report.RoundTrips });
                }

            case "clock":
                _clock.Offset = TimeSpan.FromMilliseconds(long.Parse(parts[1], CultureInfo.InvariantCulture));
                return """{"ok":true}""";
            case "counts":
                {
                    var log = await _writer.GetLogAsync();
                    return JsonSerializer.Serialize(new { ok = true, head = await log.GetLastLsnAsync(CancellationToken.None), own = Interlocked.Read(ref _ownEntries), replicated = Interlocked.Read(ref _replicatedWritten) });
                }

            case "exit":
                return """{"ok":true}""";
            default:
                throw new ArgumentException($"Unknown command '{parts[0]}'.");
        }
    }

    private string Ticket(SyncTicket ticket, UInt128 hash)
    {
        Interlocked.Add(ref _ownEntries, ticket.Lsns.Count);
        return JsonSerializer.Serialize(new { ok = true, lsn = ticket.Lsns.Last, version = ticket.Version.Value, hash = hash.ToString("X32", CultureInfo.InvariantCulture) });
    }

    private async Task<List<StateRow>> DumpAsync()
    {
        var log = await _writer.GetLogAsync();
        var result = new List<StateRow>();
        string? after = null;
        while (true)
        {
            var page = await log.ScanStateDigestsAsync("notes", BucketRange.All, after, 4096, CancellationToken.None);
            result.AddRange(page.Select(d => new StateRow(d.Id, d.Version.Value, d.ContentHash.ToString("X32", CultureInfo.InvariantCulture), d.Deleted)));
            if (page.Count < 4096)
            {
                return result;
            }

            after = page[^1].Id;
        }
    }

    internal sealed record StateRow(string Id, long Version, string Hash, bool Deleted);
}
