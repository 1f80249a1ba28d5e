using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CrossStoreSync.Qdrant.Fake;

/// <summary>
/// TEST CODE — what every call of <see cref="FakeQdrantServer"/> goes through, as on a real server: the API-key check
/// (Qdrant's messages; the health check is exempt), then the scripted faults, then the call. Calls the fake does not
/// implement, and failures of the fake itself, are recorded as violations so the test fails loudly.
/// </summary>
internal sealed class FakeInterceptor(FakeQdrantServer server) : Interceptor
{
    private const string HealthCheck = "/qdrant.Qdrant/HealthCheck";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        server.Count(context.Method, CollectionOf(request));
        if (server.ApiKey is not null && context.Method != HealthCheck)
        {
            var key = context.RequestHeaders.GetValue("api-key")
                ?? (context.RequestHeaders.GetValue("authorization") is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : null);
            if (key is null)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "Must provide an API key or an Authorization bearer token"));
            }

            if (key != server.ApiKey)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "Invalid API key or JWT"));
            }
        }

        await server.Faults.ApplyAsync(context);
        try
        {
            return await continuation(request, context);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unimplemented)
        {
            server.Violation($"{context.Method}: {ex.Status.Detail}");
            throw;
        }
        catch (Exception ex) when (ex is not RpcException and not OperationCanceledException)
        {
            server.Violation($"{context.Method}: the fake failed: {ex}");
            throw new RpcException(new Status(StatusCode.Internal, "Service internal error: " + ex.Message));
        }
    }

    /// <summary>The <c>collection_name</c> of a request, if it has one.</summary>
    private static string? CollectionOf(object request) =>
        request is IMessage message && message.Descriptor.FindFieldByName("collection_name") is { } field ? field.Accessor.GetValue(message) as string : null;
}
