using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Peering.Tests;

/// <summary>What the man in the middle does to answers of pulls.</summary>
public enum Tamper
{
    None,

    /// <summary>Flips one bit of the first chunk frame's body.</summary>
    FlipBodyBit,

    /// <summary>Flips one bit of the first chunk frame's signed header (its log range).</summary>
    FlipHeaderBit,

    /// <summary>Answers every pull with the first recorded pull answer that held a chunk.</summary>
    ReplayFirstChunkAnswer,

    /// <summary>Swaps the first two frames of an answer.</summary>
    SwapFrames,
}

/// <summary>
/// An HTTP man in the middle for the peer protocol (test code): forwards every request to a node and can alter the
/// answers of pulls, and records requests so a test can replay them. It cannot sign anything.
/// </summary>
public sealed class TamperingProxy : IAsyncDisposable
{
    private const int HeaderLength = 166;
    private readonly WebApplication _app;
    private readonly HttpClient _client = new();
    private byte[]? _recordedChunkAnswer;

    private TamperingProxy(WebApplication app) => _app = app;

    public Tamper Mode { get; set; }

    public Uri Url { get; private set; } = null!;

    /// <summary>Every request forwarded: path, headers and body.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    public int Tampered;

    public static async Task<TamperingProxy> StartAsync(Uri target, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var proxy = new TamperingProxy(app) { Url = new Uri($"http://127.0.0.1:{port}") };
        app.Run(context => proxy.ForwardAsync(context, target));
        await app.StartAsync();
        return proxy;
    }

    private async Task ForwardAsync(HttpContext context, Uri target)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var bytes = body.ToArray();
        var headers = context.Request.Headers.Where(h => h.Key.StartsWith("CSS-", StringComparison.OrdinalIgnoreCase)).ToDictionary(h => h.Key, h => h.Value.ToString());
        Requests.Enqueue(new RecordedRequest(context.Request.Path.Value!, headers, bytes));
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(target, context.Request.Path.Value)) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        using var response = await _client.SendAsync(request, context.RequestAborted);
        var answer = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
        if (context.Request.Path.Value!.EndsWith("/v1/changes", StringComparison.Ordinal) && response.IsSuccessStatusCode)
        {
            answer = Alter(answer);
        }

        context.Response.StatusCode = (int)response.StatusCode;
        context.Response.ContentType = response.Content.Headers.ContentType?.ToString();
        await context.Response.Body.WriteAsync(answer, context.RequestAborted);
    }

    private byte[] Alter(byte[] answer)
    {
        var frames = Split(answer);
        var chunk = frames.FindIndex(f => f[0] == 1 && f.Length > HeaderLength);
        if (chunk >= 0 && _recordedChunkAnswer is null)
        {
            _recordedChunkAnswer = answer;
        }

        switch (Mode)
        {
            case Tamper.FlipBodyBit when chunk >= 0:
                frames[chunk][HeaderLength + 7] ^= 0x10;
                break;
            case Tamper.FlipHeaderBit when chunk >= 0:
                frames[chunk][38] ^= 0x01; // the low byte of the frame's "to" position
                break;
            case Tamper.ReplayFirstChunkAnswer when _recordedChunkAnswer is not null && !ReferenceEquals(answer, _recordedChunkAnswer):
                Interlocked.Increment(ref Tampered);
                return _recordedChunkAnswer;
            case Tamper.SwapFrames when frames.Count >= 2:
                (frames[0], frames[1]) = (frames[1], frames[0]);
                break;
            default:
                return answer;
        }

        Interlocked.Increment(ref Tampered);
        return frames.SelectMany(f => f).ToArray();
    }

    private static List<byte[]> Split(byte[] answer)
    {
        var frames = new List<byte[]>();
        for (var at = 0; at + HeaderLength <= answer.Length;)
        {
            var length = HeaderLength + BinaryPrimitives.ReadInt32LittleEndian(answer.AsSpan(at + 66));
            frames.Add(answer.AsSpan(at, length).ToArray());
            at += length;
        }

        return frames;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _client.Dispose();
    }

    public sealed record RecordedRequest(string Path, Dictionary<string, string> Headers, byte[] Body);
}
