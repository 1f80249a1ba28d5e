using Qdrant.Client;
using Qdrant.Client.Grpc;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// The Qdrant.Client objects a store creates from its options — channel, low-level gRPC client, client — and disposes
/// with it. A store given a <see cref="QdrantClient"/> has no connection of its own: the client's owner disposes it.
/// </summary>
internal sealed class QdrantConnection : IDisposable
{
    private readonly QdrantChannel _channel;
    private readonly QdrantGrpcClient _grpc;

    private QdrantConnection(QdrantChannel channel, QdrantGrpcClient grpc, QdrantClient client)
    {
        _channel = channel;
        _grpc = grpc;
        Client = client;
    }

    public QdrantClient Client { get; }

    /// <summary>
    /// Builds a client the way Qdrant.Client does (<see cref="QdrantChannel.ForAddress(Uri, ClientConfiguration)"/>:
    /// <c>api-key</c> metadata on every call, certificate-thumbprint validation for a self-signed TLS certificate).
    /// No gRPC deadline is set here: the store's own per-call timeout bounds each attempt.
    /// </summary>
    public static QdrantConnection Create(QdrantVectorStoreOptions options)
    {
        var channel = QdrantChannel.ForAddress(options.Address!, new ClientConfiguration
        {
            ApiKey = options.ApiKey,
            CertificateThumbprint = options.CertificateThumbprint,
        });
        var grpc = new QdrantGrpcClient(channel);

        // No logger factory: Qdrant.Client logs every failed call as an error, including each transient one the store
        // retries; the store logs its retries and failures itself.
        return new QdrantConnection(channel, grpc, new QdrantClient(grpc));
    }

    public void Dispose()
    {
        Client.Dispose();
        _grpc.Dispose();
        _channel.Dispose();
    }
}
