using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant;
using CrossStoreSync.Qdrant.Fake;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Qdrant.Client;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// The Qdrant adapter's overhead over Qdrant.Client, both against the same in-process gRPC fake
/// (tests/CrossStoreSync.Qdrant.Fake, Kestrel HTTP/2 on 127.0.0.1) in the same process:
/// <list type="bullet">
/// <item><b>apply</b> — 256 entities (384-d cosine vectors) at a newer version. Baseline: raw Qdrant.Client calls doing
/// the same protocol work by hand — map the keys to point ids, read the stored versions, upsert the same points and
/// payload (raw vector copy, bucket, hash) with the same update filter, read the versions back. Both get the content
/// hashes computed up front, as the engine hands them to a store.
/// Adapter: <see cref="QdrantVectorStore.ApplyAsync"/>.</item>
/// <item><b>scan</b> — the digests of 10,000 stored points, pages of 256. Baseline: a raw scroll loop with the same
/// filter and selectors that reads each point's <c>_sync</c> fields and copies its vector out. Adapter:
/// <see cref="QdrantVectorStore.ScanDigestsAsync"/>, which also computes each digest's projection hash (the vector
/// hashed, after checking the raw copy against the normalised vector).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 5, iterationCount: 20)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class QdrantAdapterBenchmarks
{
    private const int Batch = 256;
    private const int Stored = 10_000;
    private const string VectorName = "embedding";
    private static readonly WithPayloadSelector VersionOnly = new() { Include = new PayloadIncludeSelector { Fields = { "_sync.version" } } };
    private static readonly WithPayloadSelector SyncOnly = new() { Include = new PayloadIncludeSelector { Fields = { "_sync" } } };
    private static readonly WithVectorsSelector NoVectors = new() { Enable = false };
    private static readonly WithVectorsSelector EmbeddingOnly = new() { Include = new VectorsSelector { Names = { VectorName } } };
    private FakeQdrantServer? _server;
    private QdrantVectorStore? _store;
    private QdrantClient? _client;
    private SyncEntity[] _batch = [];
    private UInt128[] _hashes = [];
    private long _ms = 1_700_000_000_000;

    [GlobalSetup]
    public async Task Setup()
    {
        _server = await FakeQdrantServer.StartAsync();
        _store = new QdrantVectorStore(new QdrantVectorStoreOptions { Address = _server.Address, BatchSize = Batch });
        await _store.InitializeAsync([new CollectionDefinition(BenchmarkData.Collection, BenchmarkData.Dimension, VectorDistance.Cosine)], CancellationToken.None);
        _client = new QdrantClient(_server.Address);

        // The scan reads what the adapter stored; the apply batch is the first 256 of the same entities.
        var all = BenchmarkData.Entities(Stored);
        for (var start = 0; start < Stored; start += 1000)
        {
            var version = new HlcTimestamp(_ms, 0, 1);
            await _store.ApplyAsync(all.Skip(start).Take(1000).Select(e => EntityChange.Upsert(e, version)).ToArray(), CancellationToken.None);
        }

        _batch = all[..Batch];
        _hashes = _batch.Select(e => EntityChange.Upsert(e, new HlcTimestamp(_ms, 0, 1)).ContentHash).ToArray();
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _client?.Dispose();
        _store?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch, Description = "raw Qdrant.Client: get versions, guarded upsert, get versions")]
    [BenchmarkCategory("apply")]
    public async Task<int> RawApply()
    {
        var version = new HlcTimestamp(Interlocked.Increment(ref _ms), 0, 1).Value;
        var ids = new PointId[Batch];
        for (var i = 0; i < Batch; i++)
        {
            ids[i] = PointIds.ToPointId(_batch[i].Key.Id);
        }

        var before = Versions(await _client!.RetrieveAsync(BenchmarkData.Collection, ids, VersionOnly, NoVectors));
        var points = new List<PointStruct>(Batch);
        var guard = new Filter();
        for (var i = 0; i < Batch; i++)
        {
            var dense = new DenseVector();
            dense.Data.Capacity = BenchmarkData.Dimension;
            foreach (var x in _batch[i].Vector.Span)
            {
                dense.Data.Add(x);
            }

            var sync = new Struct
            {
                Fields =
                {
                    ["key"] = new Value { StringValue = _batch[i].Key.Id },
                    ["version"] = new Value { IntegerValue = version },
                    ["hash"] = new Value { StringValue = _hashes[i].ToString("x32", CultureInfo.InvariantCulture) },
                    ["bucket"] = new Value { IntegerValue = KeyHash.Bucket(_batch[i].Key) },
                    ["live"] = new Value { BoolValue = true },
                    ["deleted"] = new Value { BoolValue = false },
                    ["origin"] = new Value { NullValue = NullValue.NullValue },
                    ["raw"] = new Value { StringValue = QdrantRecord.EncodeVector(_batch[i].Vector.Span) },
                },
            };
            var point = new PointStruct { Id = ids[i], Vectors = new Vectors { Vectors_ = new NamedVectors { Vectors = { [VectorName] = new Vector { Dense = dense } } } } };
            point.Payload.Add("_sync", new Value { StructValue = sync });
            points.Add(point);

            var branch = new Filter { Must = { new Condition { HasId = new HasIdCondition { HasId = { ids[i] } } } } };
            branch.Must.Add(before.TryGetValue(ids[i].Uuid, out var stored) ? Conditions.Match("_sync.version", stored) : Conditions.IsEmpty("_sync.version"));
            guard.Should.Add(new Condition { Filter = branch });
        }

        await _client.UpsertAsync(BenchmarkData.Collection, points, guard, wait: true);
        var after = Versions(await _client.RetrieveAsync(BenchmarkData.Collection, ids, VersionOnly, NoVectors));
        return after.Count;
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "QdrantVectorStore.ApplyAsync (version guard)")]
    [BenchmarkCategory("apply")]
    public async Task<int> AdapterApply()
    {
        var version = new HlcTimestamp(Interlocked.Increment(ref _ms), 0, 1);
        var changes = new EntityChange[Batch];
        for (var i = 0; i < Batch; i++)
        {
            changes[i] = EntityChange.Upsert(_batch[i], version, _hashes[i]);
        }

        await _store!.ApplyAsync(changes, CancellationToken.None);
        return changes.Length;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Stored, Description = "raw Qdrant.Client scroll loop (same filter, fields read)")]
    [BenchmarkCategory("scan")]
    public async Task<long> RawScan()
    {
        var filter = new Filter
        {
            Must =
            {
                Conditions.Range("_sync.bucket", new global::Qdrant.Client.Grpc.Range { Gte = 0, Lte = uint.MaxValue }),
                Conditions.Match("_sync.live", true),
            },
        };
        long sum = 0;
        PointId? offset = null;
        do
        {
            var page = await _client!.ScrollAsync(BenchmarkData.Collection, filter, Batch, offset, SyncOnly, EmbeddingOnly);
            foreach (var point in page.Result)
            {
                var sync = point.Payload["_sync"].StructValue.Fields;
                float[] vector = [.. point.Vectors.Vectors.Vectors[VectorName].Dense.Data];
                sum += sync["version"].IntegerValue + sync["bucket"].IntegerValue + sync["key"].StringValue.Length + sync["hash"].StringValue.Length + vector.Length;
            }

            offset = page.NextPageOffset;
        }
        while (offset is not null);
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Stored, Description = "QdrantVectorStore.ScanDigestsAsync (digests with projection hash)")]
    [BenchmarkCategory("scan")]
    public async Task<long> AdapterScan()
    {
        long count = 0;
        await foreach (var digest in _store!.ScanDigestsAsync(BenchmarkData.Collection, BucketRange.All, CancellationToken.None))
        {
            count += digest.Version.Value & 1;
        }

        return count;
    }

    private static Dictionary<string, long> Versions(IReadOnlyList<RetrievedPoint> points)
    {
        var result = new Dictionary<string, long>(points.Count, StringComparer.Ordinal);
        foreach (var point in points)
        {
            if (point.Payload.TryGetValue("_sync", out var sync) && sync.StructValue.Fields.TryGetValue("version", out var v))
            {
                result[point.Id.Uuid] = v.IntegerValue;
            }
        }

        return result;
    }
}
