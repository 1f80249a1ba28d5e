using CrossStoreSync.Errors;

using CrossStoreSync.Model;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Qdrant.Client;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>
/// Runs one Qdrant.Client call through the store's resilience pipeline — a few quick retries of transient failures that
/// honour the server's <c>retry-after</c>, and a per-attempt timeout — and turns every failure into a
/// <see cref="QdrantException"/> (<see cref="QdrantErrors"/>). Qdrant.Client has no retries of its own; the engine's
/// dispatcher retries transient failures for ever above this, so the retries here only smooth short bursts.
/// </summary>
internal sealed class QdrantCalls
{
    private static readonly ResiliencePropertyKey<string> OperationKey = new("qdrant.operation");
    private readonly QdrantClient _client;
    private readonly QdrantVectorStoreOptions _options;
    private readonly ResiliencePipeline _pipeline;

    public QdrantCalls(QdrantClient client, QdrantVectorStoreOptions options, TimeProvider time, ILogger logger)
    {
        _client = client;
        _options = options;
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
                    var operation = args.Context.Properties.GetValue(OperationKey, "call");
                    QdrantLog.Retrying(logger, options.StoreName, operation, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception);
                    return default;
                },
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    /// <summary>Calls <paramref name="call"/> with retries and the timeout; failures surface as <see cref="QdrantException"/>.</summary>
    /// <param name="operation">The store operation, for messages and logs.</param>
    /// <param name="collection">The Qdrant collection the call is about, or null.</param>
    /// <param name="key">The entity, when the call is about one.</param>
    /// <param name="state">Passed to <paramref name="call"/>, so the callback needs no closure.</param>
    /// <param name="call">The Qdrant.Client call; it must pass on the token it gets.</param>
    /// <param name="cancellationToken">The caller's token; its cancellation passes through as <see cref="OperationCanceledException"/>.</param>
    public async Task<TResult> CallAsync<TState, TResult>(string operation, string? collection, EntityKey? key, TState state, Func<QdrantClient, TState, CancellationToken, Task<TResult>> call, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(OperationKey, operation);
        try
        {
            return await _pipeline.ExecuteAsync(
                static async (ctx, s) =>
                {
                    try
                    {
                        return await s.Call(s.Self._client, s.State, ctx.CancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException && ex is not QdrantException)
                    {
                        throw QdrantErrors.Map(ex, s.Self._options, s.Collection, s.Key, s.Operation, ctx.CancellationToken);
                    }
                },
                context,
                (Self: this, State: state, Call: call, Operation: operation, Collection: collection, Key: key)).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new QdrantException(
                $"Qdrant store {SafeText.Quote(_options.StoreName)}: {operation}{QdrantErrors.Of(collection)} did not answer within {_options.RequestTimeout}.",
                true, null, null, _options.StoreName, collection, key, operation, ex);
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

        // The per-attempt timeout surfaces as a cancellation the caller did not ask for.
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };
}
