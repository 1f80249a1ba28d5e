using CrossStoreSync.Errors;

using System.Buffers;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrossStoreSync.Model;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace CrossStoreSync.Neo4j.Internal;

/// <summary>
/// Runs one statement through the Query API v2 (<c>POST /db/{db}/query/v2</c>, an implicit transaction; PROTOCOLS.md
/// §2.1) with the store's resilience pipeline, carrying bookmarks from every answer into the next request so reads
/// see the store's own writes in a cluster. The <c>errors</c> array is checked in every answer, 202 included, since
/// errors raised while streaming arrive after the status line.
/// </summary>
internal sealed class Neo4jHttp
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private static readonly ResiliencePropertyKey<string> OperationKey = new("neo4j.operation");
    private readonly IHttpClientFactory _clients;
    private readonly string _clientName;
    private readonly Neo4jGraphStoreOptions _options;
    private readonly ResiliencePipeline _pipeline;
    private readonly Uri _endpoint;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly TimeProvider _time;
    private volatile string[] _bookmarks = [];

    public Neo4jHttp(IHttpClientFactory clients, string clientName, Neo4jGraphStoreOptions options, TimeProvider time, ILogger logger)
    {
        _clients = clients;
        _clientName = clientName;
        _time = time;
        _options = options;
        var root = options.BaseAddress!.AbsoluteUri.EndsWith('/') ? options.BaseAddress : new Uri(options.BaseAddress.AbsoluteUri + "/");
        _endpoint = new Uri(root, $"db/{Uri.EscapeDataString(options.Database)}/query/v2");
        _authorization = options.BearerToken is not null ? new AuthenticationHeaderValue("Bearer", options.BearerToken)
            : options.User is not null ? new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(options.User + ":" + options.Password)))
            : null;
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception switch
                {
                    Neo4jException n => n.IsTransient,
                    TimeoutRejectedException => true,
                    OperationCanceledException => !args.Context.CancellationToken.IsCancellationRequested,
                    _ => false,
                }),
                MaxRetryAttempts = options.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is Neo4jException { RetryAfter: { } wait } ? wait : (TimeSpan?)null),
                OnRetry = args =>
                {
                    Neo4jLog.Retrying(logger, options.StoreName, args.Context.Properties.GetValue(OperationKey, "query"), args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception);
                    return default;
                },
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    /// <summary>The bookmarks of the latest answer, sent with the next request.</summary>
    public IReadOnlyList<string> Bookmarks => _bookmarks;

    /// <summary>Runs a statement; <paramref name="writeParameters"/> writes the members of the <c>parameters</c> object.</summary>
    /// <returns>The answer; <c>data.values</c> holds one array per row, aligned with <c>data.fields</c>.</returns>
    /// <exception cref="Neo4jException">Neo4j reported an error, or did not answer in time.</exception>
    public async Task<JsonDocument> RunAsync<TState>(string statement, TState state, Action<Utf8JsonWriter, TState> writeParameters, bool write, string operation, EntityKey? key, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(OperationKey, operation);
        try
        {
            var parameters = new ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(parameters))
            {
                w.WriteStartObject();
                writeParameters(w, state);
                w.WriteEndObject();
            }

            return await _pipeline.ExecuteAsync(
                static async (ctx, s) => await s.Self.RunOnceAsync(s.Statement, s.Parameters, s.Write, s.Operation, s.Key, ctx.CancellationToken).ConfigureAwait(false),
                context,
                (Self: this, Statement: statement, Parameters: parameters.WrittenMemory, Write: write, Operation: operation, Key: key)).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new Neo4jException($"Neo4j store {SafeText.Quote(_options.StoreName)}: {operation} did not answer within {_options.RequestTimeout}.", true, null, null, null, _options.StoreName, key, operation, ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private async Task<JsonDocument> RunOnceAsync(string statement, ReadOnlyMemory<byte> parameters, bool write, string operation, EntityKey? key, CancellationToken cancellationToken)
    {
        var body = new ArrayBufferWriter<byte>(statement.Length + parameters.Length + 128);
        using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartObject();
            w.WriteString("statement", statement);
            w.WritePropertyName("parameters");
            w.WriteRawValue(parameters.Span, skipInputValidation: true);
            w.WriteString("accessMode", write ? "WRITE" : "READ");
            var bookmarks = _bookmarks;
            if (bookmarks.Length > 0)
            {
                w.WriteStartArray("bookmarks");
                foreach (var b in bookmarks)
                {
                    w.WriteStringValue(b);
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ReadOnlyMemoryContent(body.WrittenMemory) };
        request.Content.Headers.ContentType = Json;
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Authorization = _authorization;
        HttpResponseMessage response;
        try
        {
            response = await _clients.CreateClient(_clientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new Neo4jException($"Neo4j store {SafeText.Quote(_options.StoreName)}: {operation} could not reach {_options.BaseAddress}: {SafeText.Text(ex.Message)}", true, null, null, null, _options.StoreName, key, operation, ex);
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            JsonDocument? document = null;
            try
            {
                document = JsonDocument.Parse(text);
            }
            catch (JsonException) when (!response.IsSuccessStatusCode)
            {
                // Proxies and overloaded servers answer in HTML or plain text; the status decides below.
            }

            if (document is not null && document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array && errors.GetArrayLength() > 0)
            {
                var first = errors[0];
                var code = first.TryGetProperty("code", out var c) ? c.GetString() : null;
                var message = first.TryGetProperty("message", out var m) ? m.GetString() : null;
                document.Dispose();
                throw Error(status, code, message, operation, key, RetryAfter(response));
            }

            if (!response.IsSuccessStatusCode || document is null)
            {
                document?.Dispose();
                throw Error(status, null, text, operation, key, RetryAfter(response));
            }

            if (document.RootElement.TryGetProperty("bookmarks", out var returned) && returned.ValueKind == JsonValueKind.Array && returned.GetArrayLength() > 0)
            {
                _bookmarks = returned.EnumerateArray().Select(b => b.GetString()!).ToArray();
            }

            return document;
        }
    }

    /// <summary>The back-off the server asked for with <c>Retry-After</c>, capped at <see cref="Neo4jGraphStoreOptions.MaxRetryAfter"/>.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response) => Errors.RetryAfterHeader.Parse(response.Headers.RetryAfter, _time.GetUtcNow(), _options.MaxRetryAfter);

    private Neo4jException Error(int status, string? code, string? message, string operation, EntityKey? key, TimeSpan? retryAfter)
    {
        // Neo.TransientError.* is retryable by definition; NotALeader means a cluster election is under way.
        var transient = code is not null
            ? code.StartsWith("Neo.TransientError.", StringComparison.Ordinal) || code == "Neo.ClientError.Cluster.NotALeader"
            : status is 408 or 429 or 502 or 503 or 504;
        var what = status switch
        {
            401 or 403 => "refused the credentials (check User/Password or BearerToken)",
            404 => $"does not know database {SafeText.Quote(_options.Database)}",
            _ when transient => "reports a transient failure",
            _ => "rejected the statement",
        };
        return new Neo4jException(
            $"Neo4j store {SafeText.Quote(_options.StoreName)}: {operation} failed with HTTP {status}{(code is null ? string.Empty : " " + SafeText.Text(code, 200))}; Neo4j {what}: {SafeText.Text(message)}",
            transient, status, code, message, _options.StoreName, key, operation) { RetryAfter = transient ? retryAfter : null };
    }
}
