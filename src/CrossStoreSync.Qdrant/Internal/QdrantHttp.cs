using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CrossStoreSync.Model;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// Sends one REST request with the store's resilience pipeline (a few quick retries of transient failures that honour
/// <c>Retry-After</c>, and a per-attempt timeout) and maps Qdrant's answers to <see cref="QdrantException"/>s
/// (PROTOCOLS.md §1.1). The engine's dispatcher retries transient failures for ever above this, so the retries here only
/// smooth short bursts.
/// </summary>
internal sealed class QdrantHttp
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private readonly IHttpClientFactory _clients;
    private readonly string _clientName;
    private readonly QdrantVectorStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ResiliencePipeline _pipeline;
    private readonly Uri _root;

    public QdrantHttp(IHttpClientFactory clients, string clientName, QdrantVectorStoreOptions options, TimeProvider time, ILogger logger)
    {
        _clients = clients;
        _clientName = clientName;
        _options = options;
        _time = time;

        // Relative paths resolve against the base only if it ends with '/' (a reverse proxy may mount Qdrant under a path).
        _root = options.BaseAddress!.AbsoluteUri.EndsWith('/') ? options.BaseAddress : new Uri(options.BaseAddress.AbsoluteUri + "/");
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome.Exception, args.Context.CancellationToken)),
                MaxRetryAttempts = options.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is QdrantException { RetryAfter: { } wait } ? wait : (TimeSpan?)null),
                OnRetry = args =>
                {
                    var operation = args.Context.Properties.GetValue(OperationKey, "request");
                    QdrantLog.Retrying(logger, options.StoreName, operation, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception);
                    return default;
                },
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    private static readonly ResiliencePropertyKey<string> OperationKey = new("qdrant.operation");

    /// <summary>Sends a request and returns the parsed body, or null for a 404 when <paramref name="notFoundIsNull"/> is set.</summary>
    /// <exception cref="QdrantException">Qdrant answered with an error, or did not answer in time.</exception>
    public async Task<JsonDocument?> SendAsync(HttpMethod method, string pathAndQuery, ReadOnlyMemory<byte>? body, string operation, EntityKey? key, CancellationToken cancellationToken, bool notFoundIsNull = false)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(OperationKey, operation);
        try
        {
            return await _pipeline.ExecuteAsync(
                static async (ctx, state) => await state.Self.SendOnceAsync(state.Method, state.Path, state.Body, state.Operation, state.Key, state.NotFoundIsNull, ctx.CancellationToken).ConfigureAwait(false),
                context,
                (Self: this, Method: method, Path: pathAndQuery, Body: body, Operation: operation, Key: key, NotFoundIsNull: notFoundIsNull)).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new QdrantException($"Qdrant store '{_options.StoreName}': {operation} did not answer within {_options.RequestTimeout}.", true, null, null, _options.StoreName, key, operation, ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private static bool IsTransient(Exception? exception, CancellationToken cancellationToken) => exception switch
    {
        QdrantException q => q.IsTransient,
        TimeoutRejectedException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    private async Task<JsonDocument?> SendOnceAsync(HttpMethod method, string pathAndQuery, ReadOnlyMemory<byte>? body, string operation, EntityKey? key, bool notFoundIsNull, CancellationToken cancellationToken)
    {
        var client = _clients.CreateClient(_clientName);
        using var request = new HttpRequestMessage(method, new Uri(_root, pathAndQuery));
        if (_options.ApiKey is not null)
        {
            request.Headers.TryAddWithoutValidation("api-key", _options.ApiKey);
        }

        request.Headers.Accept.ParseAdd("application/json");
        if (body is { } bytes)
        {
            request.Content = new ReadOnlyMemoryContent(bytes);
            request.Content.Headers.ContentType = Json;
        }

        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new QdrantException($"Qdrant store '{_options.StoreName}': {operation} could not reach {_options.BaseAddress}: {ex.Message}", true, null, null, _options.StoreName, key, operation, ex);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    return await JsonDocument.ParseAsync(stream, default, cancellationToken).ConfigureAwait(false);
                }
            }

            if (notFoundIsNull && response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }

            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw Error(response, text, operation, key);
        }
    }

    private QdrantException Error(HttpResponseMessage response, string body, string operation, EntityKey? key)
    {
        var status = (int)response.StatusCode;

        // 401/403 come from the auth layer as plain text, everything else in the JSON envelope {"status":{"error":"..."}}.
        var message = status is 401 or 403 ? body.Trim() : EnvelopeError(body) ?? body.Trim();
        var transient = status is 408 or 429 or 502 or 503 or 504;
        var what = status switch
        {
            401 or 403 => "refused the credentials (check ApiKey)",
            404 => "reports something missing (a collection deleted outside the library?)",
            _ when transient => "is busy or unavailable",
            _ => "rejected the request",
        };
        return new QdrantException(
            $"Qdrant store '{_options.StoreName}': {operation} failed with HTTP {status}; Qdrant {what}: {message}",
            transient, status, message, _options.StoreName, key, operation)
        {
            RetryAfter = transient ? RetryAfter(response) : null,
        };
    }

    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        TimeSpan? wait = header?.Delta ?? (header?.Date is { } date ? date - _time.GetUtcNow() : null);
        if (wait is not { } value)
        {
            return null;
        }

        // A date in the past means "now"; a very long wait is capped so one call does not hang, and the engine keeps retrying.
        return value < TimeSpan.Zero ? TimeSpan.Zero : value > _options.MaxRetryAfter ? _options.MaxRetryAfter : value;
    }

    private static string? EnvelopeError(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("status", out var status)
                && status.ValueKind == JsonValueKind.Object
                && status.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.String
                ? error.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
