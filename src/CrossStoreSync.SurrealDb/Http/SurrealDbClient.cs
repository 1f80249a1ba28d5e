using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.SurrealDb.Telemetry;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace CrossStoreSync.SurrealDb.Http;

/// <summary>
/// Sends SurrealQL to <c>POST /sql</c> with the namespace, database and credential headers, and maps every failure to
/// a <see cref="SyncStoreException"/>: HTTP 400 (parse errors) and 401/403 are permanent; 408/429/5xx, connection
/// failures, timeouts and transaction conflicts are transient and retried by a Polly pipeline. Thread-safe.
/// </summary>
/// <remarks>Every statement the store sends is idempotent (version-guarded writes, reads), so retrying a request whose answer was lost is safe.</remarks>
internal sealed class SurrealDbClient
{
    private static readonly MediaTypeHeaderValue SqlMediaType = new("text/plain") { CharSet = "utf-8" };
    private readonly HttpClient _http;
    private readonly SurrealDbOptions _options;
    private readonly ResiliencePipeline _pipeline;
    private readonly Uri _sqlUri;
    private readonly Uri _versionUri;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly TimeProvider _time;

    public SurrealDbClient(HttpClient http, SurrealDbOptions options, ILogger logger, TimeProvider time)
    {
        _http = http;
        _options = options;
        _time = time;
        var baseUri = options.Endpoint!.AbsoluteUri.EndsWith('/') ? options.Endpoint : new Uri(options.Endpoint.AbsoluteUri + "/");
        _sqlUri = new Uri(baseUri, "sql");
        _versionUri = new Uri(baseUri, "version");
        if (options.BearerToken is { } token)
        {
            _authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        else if (options.Username is { } user)
        {
            _authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{options.Password}")));
        }

        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (options.TransientRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is SyncStoreException { IsTransient: true } or TimeoutRejectedException),
                MaxRetryAttempts = options.TransientRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is SyncStoreException { RetryAfter: { } wait } ? wait : (TimeSpan?)null),
                OnRetry = args =>
                {
                    SurrealDbLog.Retrying(logger, options.StoreName, args.AttemptNumber + 1, args.RetryDelay, SafeText.Text(args.Outcome.Exception?.Message));
                    return default;
                },
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    /// <summary>Runs <paramref name="sql"/> and returns the per-statement results after checking every statement succeeded.</summary>
    public Task<SurrealResponse> QueryAsync(string sql, RequestContext context, CancellationToken cancellationToken) =>
        QueryAsync(sql, context, allowStatementErrors: false, cancellationToken);

    /// <summary>Runs <paramref name="sql"/>; statement errors are thrown unless <paramref name="allowStatementErrors"/> (the caller inspects them).</summary>
    /// <exception cref="SyncStoreException">The request or a statement failed (after retries when transient).</exception>
    public async Task<SurrealResponse> QueryAsync(string sql, RequestContext context, bool allowStatementErrors, CancellationToken cancellationToken)
    {
        try
        {
            return await _pipeline.ExecuteAsync(
                static async (state, ct) => await state.Self.SendOnceAsync(state.Sql, state.Context, state.AllowErrors, ct).ConfigureAwait(false),
                (Self: this, Sql: sql, Context: context, AllowErrors: allowStatementErrors),
                cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw context.Error($"timed out after {_options.RequestTimeout.TotalSeconds:0.###} s (SurrealDbOptions.RequestTimeout).", isTransient: true, ex);
        }
    }

    /// <summary>Reads the server's version text (<c>GET /version</c>, for example <c>surrealdb-3.0.2</c>).</summary>
    public async Task<string> GetVersionAsync(CancellationToken cancellationToken)
    {
        var context = new RequestContext(_options.StoreName, "version", null);
        try
        {
            return await _pipeline.ExecuteAsync(
                static async (state, ct) =>
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, state.Self._versionUri);
                    using var response = await state.Self.SendAsync(request, state.Context, ct).ConfigureAwait(false);
                    var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                    {
                        throw SurrealResponse.HttpError(response.StatusCode, body, state.Context, state.Self.RetryAfter(response));
                    }

                    return Encoding.UTF8.GetString(body).Trim();
                },
                (Self: this, Context: context),
                cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw context.Error($"timed out after {_options.RequestTimeout.TotalSeconds:0.###} s.", isTransient: true, ex);
        }
    }

    private async Task<SurrealResponse> SendOnceAsync(string sql, RequestContext context, bool allowStatementErrors, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _sqlUri) { Content = new StringContent(sql, Encoding.UTF8, SqlMediaType) };
        request.Headers.Add("Surreal-NS", _options.Namespace);
        request.Headers.Add("Surreal-DB", _options.Database);
        using var response = await SendAsync(request, context, cancellationToken).ConfigureAwait(false);
        byte[] body;
        try
        {
            body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw context.Error($"lost the connection while reading the answer: {SafeText.Text(ex.Message)}", isTransient: true, ex);
        }

        if (!response.IsSuccessStatusCode)
        {
            throw SurrealResponse.HttpError(response.StatusCode, body, context, RetryAfter(response));
        }

        var parsed = SurrealResponse.Parse(body, context);
        if (!allowStatementErrors)
        {
            try
            {
                parsed.ThrowOnError(context);
            }
            catch
            {
                parsed.Dispose();
                throw;
            }
        }

        return parsed;
    }

    /// <summary>The back-off the server asked for with <c>Retry-After</c>, capped at <see cref="SurrealDbOptions.MaxRetryAfter"/>.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response) => RetryAfterHeader.Parse(response.Headers.RetryAfter, _time.GetUtcNow(), _options.MaxRetryAfter);

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, RequestContext context, CancellationToken cancellationToken)
    {
        if (_authorization is not null)
        {
            request.Headers.Authorization = _authorization;
        }

        if (_options.AuthNamespace is { } authNs)
        {
            request.Headers.Add("Surreal-Auth-NS", authNs);
        }

        if (_options.AuthDatabase is { } authDb)
        {
            request.Headers.Add("Surreal-Auth-DB", authDb);
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw context.Error($"could not reach {_options.Endpoint}: {SafeText.Text(ex.Message)}", isTransient: true, ex);
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            throw context.Error($"lost the connection to {_options.Endpoint}: {SafeText.Text(ex.Message)}", isTransient: true, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient.Timeout surfaces as a cancellation nobody asked for.
            throw context.Error($"timed out waiting for {_options.Endpoint}.", isTransient: true, ex);
        }
    }
}
