namespace CrossStoreSync.Neo4j.Tests;

/// <summary>An <see cref="IHttpClientFactory"/> over one shared handler, as the real factory hands out clients.</summary>
public sealed class TestHttpClientFactory : IHttpClientFactory, IDisposable
{
    private readonly SocketsHttpHandler _handler = new() { PooledConnectionLifetime = TimeSpan.FromMinutes(1) };

    public HttpClient CreateClient(string name) => new(_handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

    public void Dispose() => _handler.Dispose();
}
