using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CrossStoreSync.Neo4j.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Neo4j.Tests.Fakes;

/// <summary>
/// TEST CODE — an in-process stand-in for a Neo4j server's Query API v2 (no real server can be installed here). It
/// serves only <c>POST /db/{db}/query/v2</c> (implicit transactions) with the API's shapes (PROTOCOLS.md §2.1):
/// 202 with <c>{"data":{"fields","values":[[row]]},"bookmarks"}</c>; errors as <c>{"errors":[{"code","message"}]}</c>
/// with 400 for client and transient errors, 401 for bad credentials, 404 for an unknown database. It understands
/// exactly the statements of <see cref="CypherStatements"/>: a statement is accepted only if regenerating it from the
/// catalogue with the identifiers it names gives the same text, so the adapter cannot drift from its catalogue.
/// Faults are scripted through <see cref="Faults"/>.
/// </summary>
public sealed partial class FakeNeo4jServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentQueue<string[]> _bookmarksReceived = new();
    private long _bookmark;

    private FakeNeo4jServer(WebApplication app, string database, string? user, string? password)
    {
        _app = app;
        Database = database;
        Authorization = user is null ? null : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));
    }

    public Uri BaseAddress { get; private set; } = null!;

    public string Database { get; }

    public string? Authorization { get; }

    public FakeGraph Graph { get; } = new();

    public FakeNeo4jFaults Faults { get; } = new();

    /// <summary>Requests the fake could not understand or that broke it.</summary>
    public IReadOnlyCollection<string> Violations => _violations;

    /// <summary>The <c>bookmarks</c> of each request, in arrival order.</summary>
    public IReadOnlyCollection<string[]> BookmarksReceived => _bookmarksReceived;

    /// <summary>The bookmark the latest write returned.</summary>
    public string LatestBookmark => "FB:fake-" + Interlocked.Read(ref _bookmark);

    public static async Task<FakeNeo4jServer> StartAsync(string database = "neo4j", string? user = "neo4j", string? password = "secret")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new FakeNeo4jServer(app, database, user, password);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (await Faults.ApplyAsync(context))
        {
            return;
        }

        if (Authorization is not null && context.Request.Headers.Authorization != Authorization)
        {
            await Errors(context, 401, "Neo.ClientError.Security.Unauthorized", "The client is unauthorized due to authentication failure.");
            return;
        }

        var segments = context.Request.Path.Value!.Trim('/').Split('/');
        if (context.Request.Method != "POST" || segments is not ["db", var database, "query", "v2"])
        {
            await Errors(context, 404, "Neo.ClientError.Request.Invalid", "Not found: " + context.Request.Path);
            return;
        }

        if (database != Database)
        {
            await Errors(context, 404, "Neo.ClientError.Database.DatabaseNotFound", $"Graph not found: {database}");
            return;
        }

        if (context.Request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) != true)
        {
            _violations.Enqueue("Content-Type is " + context.Request.ContentType);
            await Errors(context, 415, "Neo.ClientError.Request.Invalid", "Unsupported media type");
            return;
        }

        using var body = await JsonDocument.ParseAsync(context.Request.Body);
        var request = body.RootElement;
        if (ShapeErrors(request) is { Count: > 0 } shape)
        {
            foreach (var e in shape)
            {
                _violations.Enqueue(e);
            }

            await Errors(context, 400, "Neo.ClientError.Request.Invalid", string.Join("; ", shape));
            return;
        }
        if (request.TryGetProperty("bookmarks", out var bookmarks))
        {
            _bookmarksReceived.Enqueue(bookmarks.EnumerateArray().Select(b => b.GetString()!).ToArray());
        }
        else
        {
            _bookmarksReceived.Enqueue([]);
        }

        var statement = request.GetProperty("statement").GetString()!;
        var parameters = request.TryGetProperty("parameters", out var p) ? p : default;
        if (Faults.TakeStreamingError() is { } streamingError)
        {
            // Failed while streaming: the 202 status line is already out, the error follows in the body, nothing commits.
            context.Response.StatusCode = 202;
            await Json(context, new JsonObject { ["data"] = new JsonObject { ["fields"] = new JsonArray(), ["values"] = new JsonArray() }, ["errors"] = new JsonArray(new JsonObject { ["code"] = streamingError, ["message"] = "Fake failure while streaming." }) });
            return;
        }

        JsonObject data;
        bool write;
        try
        {
            lock (Graph.Sync)
            {
                (data, write) = Execute(statement, parameters);
            }
        }
        catch (FakeNeo4jError error)
        {
            _violations.Enqueue(error.Message);
            await Errors(context, 400, error.Code, error.Message);
            return;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _violations.Enqueue("The fake failed: " + ex);
            await Errors(context, 500, "Neo.DatabaseError.General.UnknownError", ex.Message);
            return;
        }

        var bookmark = write ? "FB:fake-" + Interlocked.Increment(ref _bookmark) : LatestBookmark;
        context.Response.StatusCode = 202;
        await Json(context, new JsonObject { ["data"] = data, ["bookmarks"] = new JsonArray(bookmark) });
    }

    /// <summary>The Query API's request record (PROTOCOLS.md §2.1): known members only, with their types.</summary>
    private static List<string> ShapeErrors(JsonElement request)
    {
        var errors = new List<string>();
        if (request.ValueKind != JsonValueKind.Object)
        {
            errors.Add("The request body is not a JSON object.");
            return errors;
        }

        foreach (var member in request.EnumerateObject())
        {
            var ok = member.Name switch
            {
                "statement" => member.Value.ValueKind == JsonValueKind.String,
                "parameters" or "txMetadata" => member.Value.ValueKind == JsonValueKind.Object,
                "bookmarks" => member.Value.ValueKind == JsonValueKind.Array && member.Value.EnumerateArray().All(b => b.ValueKind == JsonValueKind.String),
                "accessMode" => member.Value.GetString() is "READ" or "WRITE",
                "includeCounters" => member.Value.ValueKind is JsonValueKind.True or JsonValueKind.False,
                "impersonatedUser" or "txType" => member.Value.ValueKind == JsonValueKind.String,
                "maxExecutionTime" => member.Value.ValueKind == JsonValueKind.Number,
                _ => false,
            };
            if (!ok)
            {
                errors.Add($"Request member '{member.Name}' is unknown or has the wrong type: {member.Value.GetRawText()}");
            }
        }

        if (!request.TryGetProperty("statement", out _))
        {
            errors.Add("The request has no statement.");
        }

        return errors;
    }

    private (JsonObject Data, bool Write) Execute(string statement, JsonElement parameters)
    {
        var label = LabelPattern().Match(statement) is { Success: true } m ? m.Groups[1].Value : throw Syntax(statement);
        if (statement == CypherStatements.KeyConstraint(label) || statement == CypherStatements.BucketIndex(label))
        {
            Graph.Schema.Add(statement);
            return (Result([]), true);
        }

        if (statement.StartsWith("UNWIND $rows", StringComparison.Ordinal))
        {
            var groups = GroupPattern().Matches(statement).Select(g => (g.Groups[3].Value, g.Groups[2].Value)).ToList();
            Require(statement, CypherStatements.ApplyBatch(label, groups));
            return (Result(["applied"], new JsonArray(Graph.Apply(label, groups, parameters.GetProperty("rows")))), true);
        }

        if (statement.StartsWith("UNWIND $ids", StringComparison.Ordinal))
        {
            Require(statement, CypherStatements.ReadDigests(label));
            var rows = parameters.GetProperty("ids").EnumerateArray()
                .Select(id => Graph.Node(label, id.GetString()!))
                .Where(n => n is { IsLive: true })
                .Select(n => Graph.Digest(n!));
            return (Result(["id", "version", "hash", "bucket", "edges"], [.. rows]), false);
        }

        if (statement == CypherStatements.ScanDigests(label))
        {
            var after = parameters.GetProperty("after").GetString()!;
            var first = parameters.GetProperty("first").GetInt64();
            var last = parameters.GetProperty("last").GetInt64();
            var rows = Graph.Live(label)
                .Where(n => string.CompareOrdinal(n.Id, after) > 0)
                .Where(n => n.Properties["_sync_bucket"]!.GetValue<long>() is var b && b >= first && b <= last)
                .OrderBy(n => n.Id, StringComparer.Ordinal)
                .Take(parameters.GetProperty("limit").GetInt32())
                .Select(Graph.Digest);
            return (Result(["id", "version", "hash", "bucket", "edges"], [.. rows]), false);
        }

        if (statement == CypherStatements.Count(label))
        {
            return (Result(["count"], new JsonArray(Graph.Live(label).LongCount())), false);
        }

        if (statement == CypherStatements.RemoveByOrigin(label))
        {
            return (Result(["removed"], new JsonArray(Graph.RemoveByOrigin(label, parameters.GetProperty("origin").GetString()!))), true);
        }

        if (statement == CypherStatements.PurgeTombstones(label))
        {
            var purged = Graph.PurgeTombstones(label, parameters.GetProperty("version").GetInt64(), parameters.GetProperty("limit").GetInt32());
            return (Result(["purged"], new JsonArray(purged)), true);
        }

        var outgoing = statement == CypherStatements.OutgoingNeighbors(label);
        if (outgoing || statement == CypherStatements.IncomingNeighbors(label))
        {
            var type = parameters.GetProperty("type");
            var rows = Graph.Neighbors(label, parameters.GetProperty("id").GetString()!, type.ValueKind == JsonValueKind.Null ? null : type.GetString(), outgoing);
            return (Result(["type", "collection", "id", "exists"], [.. rows]), false);
        }

        throw Syntax(statement);
    }

    private static void Require(string statement, string expected)
    {
        if (statement != expected)
        {
            throw Syntax(statement);
        }
    }

    private static FakeNeo4jError Syntax(string statement) =>
        new("Neo.ClientError.Statement.SyntaxError", "The fake does not know this statement (not from CypherStatements): " + statement);

    private static JsonObject Result(string[] fields, params JsonArray[] rows) =>
        new() { ["fields"] = new JsonArray(fields.Select(f => (JsonNode)f).ToArray()), ["values"] = new JsonArray(rows) };

    private static Task Errors(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        return Json(context, new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["code"] = code, ["message"] = message }) });
    }

    private static Task Json(HttpContext context, JsonNode node)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(node.ToJsonString(), Encoding.UTF8);
    }

    [GeneratedRegex(@"\(n:`(\w+)`")]
    private static partial Regex LabelPattern();

    [GeneratedRegex(@"WHERE x\.g = (\d+)\] \| MERGE \(t:`(\w+)` .*?CREATE \(n\)-\[r:`(\w+)`\]")]
    private static partial Regex GroupPattern();
}

/// <summary>An error the fake answers with <c>{"errors":[{"code","message"}]}</c>.</summary>
internal sealed class FakeNeo4jError(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>Scripted faults of <see cref="FakeNeo4jServer"/>, consumed one per request.</summary>
public sealed class FakeNeo4jFaults
{
    private readonly ConcurrentQueue<Func<HttpContext, Task>> _queue = new();
    private readonly ConcurrentQueue<string> _streaming = new();
    private volatile bool _down;

    /// <summary>While true, every connection is dropped without an answer.</summary>
    public bool Down { get => _down; set => _down = value; }

    /// <summary>
    /// The next <paramref name="count"/> requests get <paramref name="status"/>; with a Neo4j <paramref name="code"/> the
    /// body carries it (and <paramref name="message"/>, default "Fake code"); with <paramref name="retryAfter"/>, a
    /// <c>Retry-After</c> header in whole seconds.
    /// </summary>
    public void Status(int status, int count = 1, string? code = null, TimeSpan? retryAfter = null, string? message = null)
    {
        for (var i = 0; i < count; i++)
        {
            _queue.Enqueue(async context =>
            {
                context.Response.StatusCode = status;
                if (retryAfter is { } wait)
                {
                    context.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                if (code is null)
                {
                    context.Response.ContentType = "text/plain";
                    await context.Response.WriteAsync("Service Unavailable");
                    return;
                }

                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["code"] = code, ["message"] = message ?? "Fake " + code }) }.ToJsonString());
            });
        }
    }

    /// <summary>The next request gets a 202 whose body carries <paramref name="code"/> in <c>errors</c>; nothing is applied.</summary>
    public void StreamingError(string code) => _streaming.Enqueue(code);

    /// <summary>The next request is answered only after <paramref name="delay"/>.</summary>
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

    internal string? TakeStreamingError() => _streaming.TryDequeue(out var code) ? code : null;

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
