using CrossStoreSync.Qdrant.Fake.Api;
using Google.Protobuf.Collections;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>
/// TEST CODE — one collection of <see cref="FakeQdrantServer"/>: points ordered by id, named vectors (cosine ones
/// normalised on upload, as Qdrant does), payload indexes. Errors use Qdrant's status codes and messages.
/// </summary>
internal sealed class FakeCollection(Dictionary<string, (int Size, Distance Distance)> vectors)
{
    private readonly Lock _lock = new();

    /// <summary>The vector configuration; the unnamed vector is under "".</summary>
    public Dictionary<string, (int Size, Distance Distance)> VectorConfig { get; } = vectors;

    /// <summary>Points by id; ordinal order of the lowercase hyphenated UUIDs is Qdrant's id order.</summary>
    public SortedDictionary<string, FakePoint> Points { get; } = new(StringComparer.Ordinal);

    /// <summary>The ids of <see cref="Points"/> again, as a set that can start an ordered walk at a scroll offset.</summary>
    private readonly SortedSet<string> _ids = new(StringComparer.Ordinal);

    /// <summary>Payload indexes: field → type.</summary>
    public Dictionary<string, FieldType> Indexes { get; } = new(StringComparer.Ordinal);

    public CollectionInfo Info()
    {
        lock (_lock)
        {
            var config = new VectorsConfig();
            if (VectorConfig.TryGetValue(string.Empty, out var single))
            {
                config.Params = new VectorParams { Size = (ulong)single.Size, Distance = single.Distance };
            }
            else
            {
                config.ParamsMap = new VectorParamsMap();
                foreach (var (name, (size, distance)) in VectorConfig)
                {
                    config.ParamsMap.Map[name] = new VectorParams { Size = (ulong)size, Distance = distance };
                }
            }

            var info = new CollectionInfo
            {
                Status = CollectionStatus.Green,
                OptimizerStatus = new OptimizerStatus { Ok = true },
                SegmentsCount = 1,
                PointsCount = (ulong)Points.Count,
                IndexedVectorsCount = 0,
                Config = new CollectionConfig
                {
                    Params = new CollectionParams { VectorsConfig = config, ShardNumber = 1, ReplicationFactor = 1, WriteConsistencyFactor = 1 },
                    HnswConfig = new HnswConfigDiff { M = 16, EfConstruct = 100, FullScanThreshold = 10_000 },
                    OptimizerConfig = new OptimizersConfigDiff { DeletedThreshold = 0.2, VacuumMinVectorNumber = 1000, DefaultSegmentNumber = 0, FlushIntervalSec = 5 },
                    WalConfig = new WalConfigDiff { WalCapacityMb = 32, WalSegmentsAhead = 0 },
                },
            };
            lock (Indexes)
            {
                foreach (var (field, type) in Indexes)
                {
                    // The two enums name the same types (PayloadSchemaType adds UnknownType in front).
                    info.PayloadSchema[field] = new PayloadSchemaInfo { DataType = Enum.Parse<PayloadSchemaType>(type.ToString()), Points = (ulong)Points.Count };
                }
            }

            return info;
        }
    }

    public void Upsert(UpsertPoints request)
    {
        if (request.HasUpdateMode && request.UpdateMode != UpdateMode.Upsert)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, $"The fake implements update_mode Upsert only, not {request.UpdateMode}."));
        }

        var parsed = new List<FakePoint>(request.Points.Count);
        foreach (var point in request.Points)
        {
            var id = FakeIds.Parse(point.Id);
            var vectors = point.Vectors is null
                ? throw new RpcException(new Status(StatusCode.InvalidArgument, "Expected some vectors"))
                : ParseVectors(point.Vectors);
            parsed.Add(new FakePoint(id, vectors, point.Payload.Clone()));
        }

        lock (_lock)
        {
            foreach (var point in parsed)
            {
                // The update filter guards existing points only; new points are inserted regardless (PROTOCOLS.md §1.4).
                if (request.UpdateFilter is { } guard && Points.TryGetValue(point.Id, out var existing) && !FakeFilter.Matches(guard, existing.Id, existing.Payload))
                {
                    continue;
                }

                Points[point.Id] = point;
                _ids.Add(point.Id);
            }
        }
    }

    private Dictionary<string, float[]> ParseVectors(Vectors vectors)
    {
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        switch (vectors.VectorsOptionsCase)
        {
            case Vectors.VectorsOptionsOneofCase.Vector:
                result[string.Empty] = Dense(vectors.Vector);
                break;
            case Vectors.VectorsOptionsOneofCase.Vectors_:
                foreach (var (name, vector) in vectors.Vectors_.Vectors)
                {
                    result[name] = Dense(vector);
                }

                break;
            default:
                throw new RpcException(new Status(StatusCode.InvalidArgument, "Expected some vectors"));
        }

        foreach (var (name, values) in result)
        {
            var config = Config(name);
            if (values.Length != config.Size)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"Wrong input: Vector dimension error: expected dim: {config.Size}, got {values.Length}"));
            }

            if (config.Distance == Distance.Cosine)
            {
                Normalize(values);
            }
        }

        return result;
    }

    /// <summary>A dense vector in either form Qdrant accepts: the <c>dense</c> oneof, or the deprecated <c>data</c> field.</summary>
    private static float[] Dense(Vector vector)
    {
        if (vector.VectorCase == Vector.VectorOneofCase.Dense)
        {
            return [.. vector.Dense.Data];
        }

        if (vector.VectorCase != Vector.VectorOneofCase.None)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, $"The fake stores dense vectors only, not {vector.VectorCase}."));
        }

#pragma warning disable CS0612 // Old clients send the deprecated field; Qdrant still reads it.
        return [.. vector.Data];
#pragma warning restore CS0612
    }

    private (int Size, Distance Distance) Config(string name) =>
        VectorConfig.TryGetValue(name, out var config)
            ? config
            : throw new RpcException(new Status(StatusCode.InvalidArgument, $"Wrong input: Not existing vector name error: {name}"));

    public List<RetrievedPoint> Retrieve(GetPoints request)
    {
        var result = new List<RetrievedPoint>();
        lock (_lock)
        {
            foreach (var id in request.Ids)
            {
                if (Points.TryGetValue(FakeIds.Parse(id), out var point))
                {
                    result.Add(Retrieved(point, request.WithPayload, request.WithVectors));
                }
            }
        }

        return result;
    }

    public ScrollResponse Scroll(ScrollPoints request)
    {
        if (request.OrderBy is not null)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "The fake does not implement order_by."));
        }

        var limit = request.HasLimit ? (int)request.Limit : 10;
        var offset = request.Offset is null ? null : FakeIds.Parse(request.Offset);
        var response = new ScrollResponse();
        lock (_lock)
        {
            IEnumerable<string> ids = offset is null ? _ids
                : _ids.Count == 0 || string.CompareOrdinal(offset, _ids.Max) > 0 ? []
                : _ids.GetViewBetween(offset, _ids.Max!);
            foreach (var id in ids)
            {
                var point = Points[id];
                if (!FakeFilter.Matches(request.Filter, id, point.Payload))
                {
                    continue;
                }

                if (response.Result.Count == limit)
                {
                    response.NextPageOffset = FakeIds.ToPointId(id);
                    break;
                }

                response.Result.Add(Retrieved(point, request.WithPayload, request.WithVectors));
            }
        }

        return response;
    }

    public ulong Count(CountPoints request)
    {
        lock (_lock)
        {
            return (ulong)Points.Values.Count(p => FakeFilter.Matches(request.Filter, p.Id, p.Payload));
        }
    }

    public List<ScoredPoint> Query(QueryPoints request)
    {
        if (request.Prefetch.Count > 0 || request.Query?.VariantCase != Api.Query.VariantOneofCase.Nearest || request.Query.Nearest.VariantCase != VectorInput.VariantOneofCase.Dense)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "The fake implements a nearest query with a dense vector only."));
        }

        var name = request.HasUsing ? request.Using : string.Empty;
        var config = Config(name);
        float[] query = [.. request.Query.Nearest.Dense.Data];
        if (query.Length != config.Size)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"Wrong input: Vector dimension error: expected dim: {config.Size}, got {query.Length}"));
        }

        if (config.Distance == Distance.Cosine)
        {
            Normalize(query);
        }

        var limit = request.HasLimit ? (int)request.Limit : 10;
        lock (_lock)
        {
            return Points.Values
                .Where(p => p.Vectors.ContainsKey(name) && FakeFilter.Matches(request.Filter, p.Id, p.Payload))
                .Select(p => (Point: p, Score: Dot(query, p.Vectors[name])))
                .OrderByDescending(x => x.Score)
                .Take(limit)
                .Select(x =>
                {
                    var retrieved = Retrieved(x.Point, request.WithPayload, request.WithVectors);
                    var scored = new ScoredPoint { Id = retrieved.Id, Score = x.Score, Version = 1, Vectors = retrieved.Vectors };
                    scored.Payload.Add(retrieved.Payload);
                    return scored;
                })
                .ToList();
        }
    }

    public void Delete(DeletePoints request)
    {
        lock (_lock)
        {
            switch (request.Points?.PointsSelectorOneOfCase)
            {
                case PointsSelector.PointsSelectorOneOfOneofCase.Points:
                    foreach (var id in request.Points.Points.Ids)
                    {
                        var text = FakeIds.Parse(id);
                        Points.Remove(text);
                        _ids.Remove(text);
                    }

                    break;
                case PointsSelector.PointsSelectorOneOfOneofCase.Filter:
                    foreach (var id in Points.Where(p => FakeFilter.Matches(request.Points.Filter, p.Key, p.Value.Payload)).Select(p => p.Key).ToList())
                    {
                        Points.Remove(id);
                        _ids.Remove(id);
                    }

                    break;
                default:
                    throw new RpcException(new Status(StatusCode.InvalidArgument, "Wrong input: no points selector"));
            }
        }
    }

    private static RetrievedPoint Retrieved(FakePoint point, WithPayloadSelector? withPayload, WithVectorsSelector? withVectors)
    {
        var result = new RetrievedPoint { Id = FakeIds.ToPointId(point.Id) };
        switch (withPayload?.SelectorOptionsCase)
        {
            case null or WithPayloadSelector.SelectorOptionsOneofCase.None:
            case WithPayloadSelector.SelectorOptionsOneofCase.Enable when withPayload.Enable:
                result.Payload.Add(point.Payload.Clone());
                break;
            case WithPayloadSelector.SelectorOptionsOneofCase.Include:
                foreach (var path in withPayload.Include.Fields)
                {
                    CopyPath(point.Payload, result.Payload, path.Split('.'));
                }

                break;
            case WithPayloadSelector.SelectorOptionsOneofCase.Enable:
                break;
            default:
                throw new RpcException(new Status(StatusCode.Unimplemented, $"The fake does not implement with_payload {withPayload.SelectorOptionsCase}."));
        }

        var names = withVectors?.SelectorOptionsCase switch
        {
            WithVectorsSelector.SelectorOptionsOneofCase.Enable when withVectors.Enable => point.Vectors.Keys.ToHashSet(StringComparer.Ordinal),
            WithVectorsSelector.SelectorOptionsOneofCase.Include => withVectors.Include.Names.ToHashSet(StringComparer.Ordinal),
            _ => null,
        };
        if (names is not null)
        {
            // Qdrant answers vectors in the dense oneof and leaves the deprecated data field empty.
            var output = new NamedVectorsOutput();
            foreach (var (name, values) in point.Vectors)
            {
                if (names.Contains(name))
                {
                    output.Vectors[name] = new VectorOutput { Dense = new DenseVector { Data = { values } } };
                }
            }

            result.Vectors = new VectorsOutput { Vectors = output };
        }

        return result;
    }

    private static void CopyPath(MapField<string, Value> from, MapField<string, Value> to, ReadOnlySpan<string> path)
    {
        if (!from.TryGetValue(path[0], out var value))
        {
            return;
        }

        if (path.Length == 1)
        {
            to[path[0]] = value.Clone();
            return;
        }

        if (value.KindCase == Value.KindOneofCase.StructValue)
        {
            if (!to.TryGetValue(path[0], out var target) || target.KindCase != Value.KindOneofCase.StructValue)
            {
                to[path[0]] = target = new Value { StructValue = new Struct() };
            }

            CopyPath(value.StructValue.Fields, target.StructValue.Fields, path[1..]);
        }
    }

    private static float Dot(float[] a, float[] b)
    {
        var sum = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>Qdrant's cosine preprocessing: x / |x| unless |x| is below f32::EPSILON.</summary>
    private static void Normalize(float[] v)
    {
        var length = MathF.Sqrt(Dot(v, v));
        if (length < 1.1920929e-7f)
        {
            return;
        }

        for (var i = 0; i < v.Length; i++)
        {
            v[i] /= length;
        }
    }
}
