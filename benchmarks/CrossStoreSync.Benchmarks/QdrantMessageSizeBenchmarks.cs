using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using CrossStoreSync.Benchmarks.Baselines;
using CrossStoreSync.Model;
using CrossStoreSync.Qdrant;
using CrossStoreSync.Qdrant.Internal;
using CrossStoreSync.Stores;
using Google.Protobuf;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Benchmarks;

/// <summary>
/// What the Qdrant adapter puts on the wire for a batch of 256 entities (384-d cosine vectors) before and after issue 14:
/// the REST adapter's JSON bodies (baseline, <see cref="RestJsonBodies"/>) against the gRPC messages Qdrant.Client sends
/// and receives for the same work — the guarded upsert (points, <c>_sync</c> payload, update filter) and a scroll page
/// of digests (payload and vector). Time is the serialisation alone; the <c>Bytes</c> column is the message size.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 10)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Config(typeof(Columns))]
public class QdrantMessageSizeBenchmarks
{
    private readonly Messages _messages = Messages.Create();

    [Benchmark(Baseline = true, Description = "REST: JSON upsert body (256 points + update_filter)")]
    [BenchmarkCategory("upsert")]
    public int JsonUpsert() => RestJsonBodies.Upsert(_messages.Changes, "embedding", _messages.Stored);

    [Benchmark(Description = "gRPC: UpsertPoints (256 points + update filter)")]
    [BenchmarkCategory("upsert")]
    public int GrpcUpsert() => Messages.Upsert(_messages.Changes, _messages.Stored).ToByteArray().Length;

    [Benchmark(Baseline = true, Description = "REST: JSON scroll answer (256 points, payload + vector)")]
    [BenchmarkCategory("scroll page")]
    public int JsonScrollPage() => RestJsonBodies.ScrollPage(_messages.Changes, "embedding", PointIds.For("next"));

    [Benchmark(Description = "gRPC: ScrollResponse (256 points, payload + vector)")]
    [BenchmarkCategory("scroll page")]
    public int GrpcScrollPage() => Messages.ScrollPage(_messages.Changes).ToByteArray().Length;

    /// <summary>The same inputs for every method, made deterministically so the size column can rebuild them.</summary>
    private sealed record Messages(EntityChange[] Changes, Dictionary<string, long?> Stored)
    {
        private static readonly QdrantVectorStore.CollectionState State = new(BenchmarkData.Collection, BenchmarkData.Collection, "embedding", BenchmarkData.Dimension, VectorDistance.Cosine);

        public static Messages Create()
        {
            var version = new HlcTimestamp(1_700_000_000_000, 0, 1);
            var changes = BenchmarkData.Entities(256).Select(e => EntityChange.Upsert(e, version)).ToArray();

            // The guard of a batch that replaces points already stored at an older version (one exact match per point).
            var stored = changes.ToDictionary(c => PointIds.For(c.Key.Id), _ => (long?)(version.Value - 1), StringComparer.Ordinal);
            return new Messages(changes, stored);
        }

        public static UpsertPoints Upsert(EntityChange[] changes, Dictionary<string, long?> stored)
        {
            var request = new UpsertPoints { CollectionName = State.QdrantName, Wait = true };
            var guard = new List<(PointId, long?)>(changes.Length);
            foreach (var change in changes)
            {
                var point = QdrantVectorStore.ToPoint(State, change);
                request.Points.Add(point);
                guard.Add((point.Id, stored.GetValueOrDefault(point.Id.Uuid)));
            }

            request.UpdateFilter = SyncFilters.VersionGuard(guard);
            return request;
        }

        public static ScrollResponse ScrollPage(EntityChange[] changes)
        {
            var response = new ScrollResponse { NextPageOffset = PointIds.ToPointId("next"), Time = 0.000125 };
            foreach (var change in changes)
            {
                var written = QdrantVectorStore.ToPoint(State, change);
                var point = new RetrievedPoint { Id = written.Id };
                point.Payload.Add(written.Payload);
                var output = new NamedVectorsOutput();
                output.Vectors.Add("embedding", new VectorOutput { Dense = written.Vectors.Vectors_.Vectors["embedding"].Dense });
                point.Vectors = new VectorsOutput { Vectors = output };
                response.Result.Add(point);
            }

            return response;
        }

        public int SizeOf(string method) => method switch
        {
            nameof(JsonUpsert) => RestJsonBodies.Upsert(Changes, "embedding", Stored),
            nameof(GrpcUpsert) => Upsert(Changes, Stored).CalculateSize(),
            nameof(JsonScrollPage) => RestJsonBodies.ScrollPage(Changes, "embedding", PointIds.For("next")),
            nameof(GrpcScrollPage) => ScrollPage(Changes).CalculateSize(),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown benchmark."),
        };
    }

    /// <summary>Adds the message size, computed in the host process from the same deterministic inputs.</summary>
    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumn(new SizeColumn());
    }

    private sealed class SizeColumn : IColumn
    {
        private static readonly Lazy<Messages> Inputs = new(Messages.Create);

        public string Id => "MessageBytes";

        public string ColumnName => "Bytes";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Size;

        public string Legend => "Size of the message on the wire (body bytes; gRPC adds a 5-byte frame header)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
            Inputs.Value.SizeOf(benchmarkCase.Descriptor.WorkloadMethod.Name).ToString("N0", CultureInfo.InvariantCulture);

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}
