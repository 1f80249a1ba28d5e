using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Qdrant.Tests.Fakes;

/// <summary>
/// TEST CODE — an in-process stand-in for a Qdrant server (no real server can be installed here). It implements only
/// the REST endpoints the adapter uses, with Qdrant's envelopes, status codes and error texts (PROTOCOLS.md §1):
/// <c>{"result","status":"ok","time"}</c> on success, <c>{"status":{"error"},"time"}</c> on errors, plain-text 401s,
/// 404 for a missing collection, 409 for an existing one, 400 for a wrong vector dimension, and cosine vectors
/// normalised on upload. Every request is validated against Qdrant's OpenAPI document, and so is every answer the fake
/// writes itself (it must match the declared response schema); request violations are answered with
/// 422 and recorded in <see cref="Violations"/>. Faults (503 bursts, 429 with Retry-After, slow answers, a server
/// that drops connections) are scripted through <see cref="Faults"/>.
/// </summary>
public sealed class FakeQdrantServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly OpenApiRequestValidator _validator;
    private readonly ConcurrentDictionary<string, FakeCollection> _collections = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);

    private FakeQdrantServer(WebApplication app, OpenApiRequestValidator validator, string? apiKey)
    {
        _app = app;
        _validator = validator;
        ApiKey = apiKey;
    }

    public Uri BaseAddress { get; private set; } = null!;

    public string? ApiKey { get; }

    /// <summary>Scripted faults, consumed one per request.</summary>
    public FakeFaults Faults { get; } = new();

    /// <summary>What the OpenAPI validation rejected.</summary>
    public IReadOnlyCollection<string> Violations => _violations;

    /// <summary>Requests received per "METHOD /template-ish path" (collection names kept).</summary>
    public IReadOnlyDictionary<string, int> Requests => _requests;

    /// <summary>Runs once before the next upsert is applied: a second writer acting between the adapter's read and write.</summary>
    public Action<FakeQdrantServer>? BeforeNextUpsert { get => _beforeNextUpsertTaken; set => _beforeNextUpsertTaken = value; }

    private Action<FakeQdrantServer>? _beforeNextUpsertTaken;

    /// <summary>The version <c>GET /</c> reports.</summary>
    public string Version { get; set; } = "1.19.0";

    public static async Task<FakeQdrantServer> StartAsync(string? apiKey = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var validator = Validator.Value;
        var server = new FakeQdrantServer(app, validator, apiKey);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    private static readonly Lazy<OpenApiRequestValidator> Validator = new(() =>
        OpenApiRequestValidator.Load(Path.Combine(AppContext.BaseDirectory, "OpenApi", "qdrant-openapi-1.19.json")));

    /// <summary>Direct access to a stored point, for tests that edit data behind the library's back.</summary>
    public FakePoint? Point(string collection, string pointId) =>
        _collections.TryGetValue(collection, out var c) && c.Points.TryGetValue(pointId, out var p) ? p : null;

    /// <summary>Drops a collection behind the library's back.</summary>
    public void DropCollection(string collection) => _collections.TryRemove(collection, out _);

    /// <summary>Creates a collection with a single unnamed vector, as another tool might have.</summary>
    public void CreateUnnamedCollection(string name, int size, string distance) =>
        _collections[name] = new FakeCollection(new Dictionary<string, (int, string)> { [string.Empty] = (size, distance) });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        _requests.AddOrUpdate($"{request.Method} {request.Path}", 1, (_, n) => n + 1);
        if (await Faults.ApplyAsync(context))
        {
            return;
        }

        if (ApiKey is not null && request.Path != "/healthz" && request.Headers["api-key"] != ApiKey)
        {
            // Qdrant's auth layer answers in plain text, not in the JSON envelope (PROTOCOLS.md §1.1).
            context.Response.StatusCode = 401;
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("Must provide an API key or an Authorization bearer token");
            return;
        }

        JsonDocument? body = null;
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            try
            {
                body = await JsonDocument.ParseAsync(request.Body);
            }
            catch (JsonException ex)
            {
                await Error(context, 400, "Format error in JSON body: " + ex.Message);
                return;
            }
        }

        using (body)
        {
            var errors = _validator.Validate(request.Method, request.Path.Value!, request.Query.Keys, body?.RootElement);
            if (errors.Count > 0)
            {
                foreach (var e in errors)
                {
                    _violations.Enqueue(e);
                }

                await Error(context, 422, "Validation error in JSON body (OpenAPI): " + string.Join("; ", errors));
                return;
            }

            try
            {
                await RouteAsync(context, request.Method, request.Path.Value!.Trim('/').Split('/'), body?.RootElement);
            }
            catch (FakeQdrantError error)
            {
                await Error(context, error.Status, error.Message);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A bug of the fake (or a request shape it does not know) must fail the test loudly.
                _violations.Enqueue("The fake failed: " + ex);
                await Error(context, 500, "Service internal error: " + ex.Message);
            }
        }
    }

    private Task RouteAsync(HttpContext context, string method, string[] s, JsonElement? body)
    {
        if (s is [""] && method == "GET")
        {
            return Raw(context, new JsonObject { ["title"] = "qdrant - vector search engine", ["version"] = Version, ["commit"] = "fake" });
        }

        if (s is not ["collections", var name, ..])
        {
            throw new FakeQdrantError(404, "Not found");
        }

        switch (method, s.Length > 2 ? string.Join('/', s[2..]) : string.Empty)
        {
            case ("GET", ""):
                return Ok(context, Collection(name).Info());
            case ("PUT", ""):
                return Ok(context, CreateCollection(name, body!.Value));
            case ("PUT", "index"):
                Collection(name).Indexes[body!.Value.GetProperty("field_name").GetString()!] = body.Value.GetProperty("field_schema").GetRawText();
                return Ok(context, Completed());
            case ("PUT", "points"):
                Interlocked.Exchange(ref _beforeNextUpsertTaken, null)?.Invoke(this);
                Collection(name).Upsert(body!.Value);
                return Ok(context, Completed());
            case ("POST", "points"):
                return Ok(context, Collection(name).Retrieve(body!.Value));
            case ("POST", "points/scroll"):
                return Ok(context, Collection(name).Scroll(body!.Value));
            case ("POST", "points/count"):
                return Ok(context, Collection(name).Count(body!.Value));
            case ("POST", "points/query"):
                return Ok(context, Collection(name).Query(body!.Value));
            case ("POST", "points/delete"):
                Collection(name).Delete(body!.Value);
                return Ok(context, Completed());
            default:
                throw new FakeQdrantError(404, $"Not found: {method} {string.Join('/', s)} is not implemented by the fake");
        }
    }

    private FakeCollection Collection(string name) =>
        _collections.TryGetValue(name, out var c) ? c : throw new FakeQdrantError(404, $"Not found: Collection `{name}` doesn't exist!");

    private JsonNode CreateCollection(string name, JsonElement body)
    {
        var vectors = new Dictionary<string, (int, string)>(StringComparer.Ordinal);
        var config = body.GetProperty("vectors");
        if (config.TryGetProperty("size", out _))
        {
            vectors[string.Empty] = (config.GetProperty("size").GetInt32(), config.GetProperty("distance").GetString()!);
        }
        else
        {
            foreach (var v in config.EnumerateObject())
            {
                vectors[v.Name] = (v.Value.GetProperty("size").GetInt32(), v.Value.GetProperty("distance").GetString()!);
            }
        }

        if (!_collections.TryAdd(name, new FakeCollection(vectors)))
        {
            throw new FakeQdrantError(409, $"Wrong input: Collection `{name}` already exists!");
        }

        return JsonValue.Create(true);
    }

    private static JsonObject Completed() => new() { ["operation_id"] = 1, ["status"] = "completed" };

    private Task Ok(HttpContext context, JsonNode result) =>
        Raw(context, new JsonObject { ["result"] = result, ["status"] = "ok", ["time"] = 0.000125 });

    private Task Error(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return Raw(context, new JsonObject { ["status"] = new JsonObject { ["error"] = message }, ["time"] = 0.0 });
    }

    /// <summary>Writes an answer after checking it against the response schema, so the fake cannot drift from Qdrant's shapes.</summary>
    private Task Raw(HttpContext context, JsonNode node)
    {
        var text = node.ToJsonString();
        using (var document = JsonDocument.Parse(text))
        {
            foreach (var error in _validator.ValidateResponse(context.Request.Method, context.Request.Path.Value!, context.Response.StatusCode, document.RootElement))
            {
                _violations.Enqueue("The fake's own answer: " + error);
            }
        }

        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(text, Encoding.UTF8);
    }
}

/// <summary>An error the fake answers in Qdrant's envelope.</summary>
internal sealed class FakeQdrantError(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>A point of the fake: named vectors and a JSON payload.</summary>
public sealed class FakePoint(string id, Dictionary<string, float[]> vectors, JsonObject payload)
{
    public string Id { get; } = id;

    public Dictionary<string, float[]> Vectors { get; set; } = vectors;

    public JsonObject Payload { get; set; } = payload;
}

/// <summary>Scripted faults: each queued fault answers one request instead of the fake's normal handling.</summary>
public sealed class FakeFaults
{
    private readonly ConcurrentQueue<Func<HttpContext, Task>> _queue = new();
    private volatile bool _down;

    /// <summary>While true, every connection is dropped without an answer, as by a server that is down.</summary>
    public bool Down { get => _down; set => _down = value; }

    /// <summary>The next <paramref name="count"/> requests are answered with <paramref name="status"/> in the JSON envelope.</summary>
    public void Status(int status, int count = 1, TimeSpan? retryAfter = null)
    {
        for (var i = 0; i < count; i++)
        {
            _queue.Enqueue(async context =>
            {
                context.Response.StatusCode = status;
                if (retryAfter is { } wait)
                {
                    context.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                }

                context.Response.ContentType = "application/json";
                var message = status == 429 ? "Too many requests: rate limit exceeded" : "Service unavailable: No active replica";
                await context.Response.WriteAsync(new JsonObject { ["status"] = new JsonObject { ["error"] = message }, ["time"] = 0.0 }.ToJsonString());
            });
        }
    }

    /// <summary>The next request is answered only after <paramref name="delay"/> (a hung server, for client timeouts).</summary>
    public void Slow(TimeSpan delay) => _queue.Enqueue(async context =>
    {
        try
        {
            await Task.Delay(delay, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        context.Response.StatusCode = 503;
    });

    internal async Task<bool> ApplyAsync(HttpContext context)
    {
        if (_down)
        {
            context.Abort();
            return true;
        }

        if (_queue.TryDequeue(out var fault))
        {
            await fault(context);
            return true;
        }

        return false;
    }
}
