using CrossStoreSync.Qdrant.Fake.Api;
using Grpc.Core;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>TEST CODE — Qdrant's health check (no API key needed, as on the real server).</summary>
internal sealed class FakeQdrantService(FakeQdrantServer server) : Api.Qdrant.QdrantBase
{
    public override Task<HealthCheckReply> HealthCheck(HealthCheckRequest request, ServerCallContext context) =>
        Task.FromResult(new HealthCheckReply { Title = "qdrant - vector search engine", Version = server.Version, Commit = "fake" });
}

/// <summary>TEST CODE — the collection calls the adapter makes: info and create.</summary>
internal sealed class FakeCollectionsService(FakeQdrantServer server) : Collections.CollectionsBase
{
    public override Task<GetCollectionInfoResponse> Get(GetCollectionInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new GetCollectionInfoResponse { Result = server.Collection(request.CollectionName).Info(), Time = 0.000125 });

    public override Task<CollectionOperationResponse> Create(CreateCollection request, ServerCallContext context)
    {
        var vectors = new Dictionary<string, (int, Distance)>(StringComparer.Ordinal);
        switch (request.VectorsConfig?.ConfigCase)
        {
            case VectorsConfig.ConfigOneofCase.Params:
                vectors[string.Empty] = ((int)request.VectorsConfig.Params.Size, request.VectorsConfig.Params.Distance);
                break;
            case VectorsConfig.ConfigOneofCase.ParamsMap:
                foreach (var (name, p) in request.VectorsConfig.ParamsMap.Map)
                {
                    vectors[name] = ((int)p.Size, p.Distance);
                }

                break;
            default:
                throw new RpcException(new Status(StatusCode.Unimplemented, "The fake creates collections with dense vectors only."));
        }

        server.AddCollection(request.CollectionName, vectors);
        return Task.FromResult(new CollectionOperationResponse { Result = true, Time = 0.000125 });
    }
}

/// <summary>TEST CODE — the point calls the adapter makes: upsert, get, scroll, count, query, delete, payload index.</summary>
internal sealed class FakePointsService(FakeQdrantServer server) : Points.PointsBase
{
    public override Task<PointsOperationResponse> Upsert(UpsertPoints request, ServerCallContext context)
    {
        var collection = server.Collection(request.CollectionName);
        server.TakeBeforeNextUpsert()?.Invoke(server);
        collection.Upsert(request);
        return Completed();
    }

    public override Task<GetResponse> Get(GetPoints request, ServerCallContext context) =>
        Task.FromResult(new GetResponse { Result = { server.Collection(request.CollectionName).Retrieve(request) }, Time = 0.000125 });

    public override Task<ScrollResponse> Scroll(ScrollPoints request, ServerCallContext context)
    {
        var response = server.Collection(request.CollectionName).Scroll(request);
        response.Time = 0.000125;
        return Task.FromResult(response);
    }

    public override Task<CountResponse> Count(CountPoints request, ServerCallContext context) =>
        Task.FromResult(new CountResponse { Result = new CountResult { Count = server.Collection(request.CollectionName).Count(request) }, Time = 0.000125 });

    public override Task<QueryResponse> Query(QueryPoints request, ServerCallContext context) =>
        Task.FromResult(new QueryResponse { Result = { server.Collection(request.CollectionName).Query(request) }, Time = 0.000125 });

    public override Task<PointsOperationResponse> Delete(DeletePoints request, ServerCallContext context)
    {
        server.Collection(request.CollectionName).Delete(request);
        return Completed();
    }

    public override Task<PointsOperationResponse> CreateFieldIndex(CreateFieldIndexCollection request, ServerCallContext context)
    {
        if (!request.HasFieldType)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Wrong input: field_type is required"));
        }

        var collection = server.Collection(request.CollectionName);
        lock (collection.Indexes)
        {
            collection.Indexes[request.FieldName] = request.FieldType;
        }

        return Completed();
    }

    private Task<PointsOperationResponse> Completed() => Task.FromResult(new PointsOperationResponse
    {
        Result = new UpdateResult { OperationId = server.NextOperationId(), Status = UpdateStatus.Completed },
        Time = 0.000125,
    });
}
