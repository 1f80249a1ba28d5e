using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.FaultProxy.Tests.Support;

/// <summary>
/// TEST CODE — a real Kestrel HTTP/1.1 server on 127.0.0.1: <c>GET /name</c> answers its name, <c>POST /echo</c>
/// returns the body, <c>GET /hang</c> signals its arrival and then waits until the connection breaks (or disposal).
/// </summary>
internal sealed class TestWebServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<bool> _hanging = Channel.CreateUnbounded<bool>();
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TestWebServer(WebApplication app) => _app = app;

    public IPEndPoint EndPoint { get; private set; } = null!;

    public static async Task<TestWebServer> StartAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new TestWebServer(app);
        app.MapGet("/name", () => name);
        app.MapPost("/echo", async (HttpContext context) =>
        {
            context.Response.ContentType = "application/octet-stream";
            await context.Request.Body.CopyToAsync(context.Response.Body, context.RequestAborted);
        });
        app.MapGet("/hang", async (HttpContext context) =>
        {
            server._hanging.Writer.TryWrite(true);
            await server._released.Task.WaitAsync(context.RequestAborted);
            return "released";
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server.EndPoint = new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
        return server;
    }

    /// <summary>Completes when a <c>GET /hang</c> request has reached the server.</summary>
    public async Task WaitForHangingRequestAsync() => await _hanging.Reader.ReadAsync().AsTask().WaitAsync(Wait.Long);

    /// <summary>An HTTP client that reaches this kind of server through <paramref name="proxy"/>, with its own connection pool.</summary>
    public static HttpClient ClientThrough(TcpFaultProxy proxy) =>
        new(new SocketsHttpHandler()) { BaseAddress = new Uri($"http://{proxy.EndPoint}/"), Timeout = Wait.Long };

    public async ValueTask DisposeAsync()
    {
        _released.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
