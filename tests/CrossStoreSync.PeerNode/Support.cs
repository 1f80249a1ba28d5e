using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Replication;

namespace CrossStoreSync.PeerNode;

/// <summary>The command line of a node.</summary>
internal sealed record NodeArguments(int NodeId, string Directory, string Key, string Listen, List<(int Id, string Url, string Key)> Peers, long ClockOffsetMs, string? Crash, string? Resolver, int ChunkEntries)
{
    public static NodeArguments Parse(string[] args)
    {
        int node = -1, chunk = 512;
        string? dir = null, key = null, listen = null, crash = null, resolver = null;
        long offset = 0;
        var peers = new List<(int, string, string)>();
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = args[i + 1];
            switch (args[i])
            {
                case "--node": node = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--dir": dir = value; break;
                case "--key": key = value; break;
                case "--listen": listen = value; break;
                case "--clock-offset-ms": offset = long.Parse(value, CultureInfo.InvariantCulture); break;
                case "--crash": crash = value; break;
                case "--resolver": resolver = value; break;
                case "--chunk": chunk = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--peer":
                    var parts = value.Split('=', 3);
                    peers.Add((int.Parse(parts[0], CultureInfo.InvariantCulture), parts[1], parts[2]));
                    break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }

        return new NodeArguments(node, dir ?? throw new ArgumentException("--dir is required"), key ?? throw new ArgumentException("--key is required"), listen ?? throw new ArgumentException("--listen is required"), peers, offset, crash, resolver, chunk);
    }
}

/// <summary>A clock with an adjustable offset: per-node skew in the harness.</summary>
internal sealed class OffsetClock : TimeProvider
{
    public TimeSpan Offset { get; set; }

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
}

/// <summary>Kills the process (SIGKILL) right before or right after the Nth batch of received states commits.</summary>
internal sealed class CrashingWriter(IReplicationWriter inner, string plan) : IReplicationWriter
{
    private readonly bool _before = plan.StartsWith("before-commit:", StringComparison.Ordinal);
    private readonly int _at = int.Parse(plan[(plan.IndexOf(':', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture);
    private int _batches;

    public int NodeId => inner.NodeId;

    public long Head => inner.Head;

    public ValueTask<IReplicationLog> GetLogAsync(CancellationToken cancellationToken = default) => inner.GetLogAsync(cancellationToken);

    public ValueTask WaitForHeadAsync(long afterLsn, CancellationToken cancellationToken = default) => inner.WaitForHeadAsync(afterLsn, cancellationToken);

    public async ValueTask<ReplicationWriteResult> ApplyAsync(ReplicationBatch batch, CancellationToken cancellationToken = default)
    {
        var n = batch.States.Count > 0 ? Interlocked.Increment(ref _batches) : 0;
        if (_before && n == _at)
        {
            Die();
        }

        var result = await inner.ApplyAsync(batch, cancellationToken);
        if (!_before && n == _at)
        {
            Die();
        }

        return result;
    }

    private static void Die()
    {
        Console.Error.WriteLine("crash: killing myself with SIGKILL");
        Process.GetCurrentProcess().Kill();
        Thread.Sleep(Timeout.Infinite);
    }
}

/// <summary>A deterministic merge for the harness: the union of the words of both texts, sorted (a fixed point).</summary>
internal sealed class WordUnionResolver : IConflictResolver
{
    public ConflictResolution Resolve(ConflictingState older, ConflictingState newer)
    {
        if (older.Entity is null || newer.Entity is null)
        {
            return ConflictResolution.KeepNewer;
        }

        var words = Words(older.Entity).Union(Words(newer.Entity)).Order(StringComparer.Ordinal);
        return ConflictResolution.Merge(NodeCommands.Note(newer.Key.Id, string.Join(' ', words)));
    }

    private static IEnumerable<string> Words(SyncEntity entity) =>
        JsonDocument.Parse(entity.Document).RootElement.GetProperty("text").GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
