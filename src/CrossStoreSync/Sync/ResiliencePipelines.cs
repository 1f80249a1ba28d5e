using CrossStoreSync.Configuration;
using CrossStoreSync.Telemetry;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace CrossStoreSync.Sync;

/// <summary>Builds the Polly pipelines around store applies.</summary>
internal static class ResiliencePipelines
{
    /// <summary>
    /// For replica dispatchers: retry transient failures for ever with capped exponential backoff and jitter (a replica
    /// that is down must catch up when it returns, so giving up would only turn an outage into lost changes), with a
    /// per-attempt timeout so a hung store counts as a transient failure.
    /// </summary>
    /// <remarks>
    /// A failure that carries the store's own back-off hint (<see cref="Errors.SyncStoreException.RetryAfter"/>: HTTP
    /// <c>Retry-After</c>, a gRPC retry delay) waits at least that long, capped at
    /// <see cref="CrossStoreSyncOptions.MaxRetryAfter"/>, and never less than this pipeline's own back-off for the attempt:
    /// retrying a rate-limited server sooner than it asked only earns another refusal.
    /// </remarks>
    public static ResiliencePipeline ForReplica(string store, CrossStoreSyncOptions options, TimeProvider time, SyncMetrics metrics, EventHub events, ILogger logger)
    {
        var retry = Retry(store, int.MaxValue, options, time, metrics, events, logger);
        retry.DelayGenerator = args => ValueTask.FromResult(HonourRetryAfter(store, options, args.AttemptNumber, args.Outcome.Exception, logger));
        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(retry)
            .AddTimeout(options.ApplyTimeout)
            .Build();
    }

    /// <summary>
    /// The delay before retry <paramref name="attempt"/> (0-based) when the failure carries a back-off hint: the hint, capped
    /// at <see cref="CrossStoreSyncOptions.MaxRetryAfter"/>, or the pipeline's own exponential delay for that attempt
    /// (without jitter) when that is longer. Null without a hint, so the pipeline's own jittered back-off applies.
    /// </summary>
    internal static TimeSpan? HonourRetryAfter(string store, CrossStoreSyncOptions options, int attempt, Exception? error, ILogger logger)
    {
        if (TransientErrors.GetRetryAfter(error) is not { } hint)
        {
            return null;
        }

        var asked = hint > options.MaxRetryAfter ? options.MaxRetryAfter : hint;
        var own = TimeSpan.FromTicks((long)Math.Min(options.RetryBaseDelay.Ticks * Math.Pow(2, Math.Min(attempt, 62)), options.RetryMaxDelay.Ticks));
        var delay = asked > own ? asked : own;
        SyncLog.RetryAfterHonoured(logger, store, hint, attempt + 1, delay);
        return delay;
    }

    /// <summary>For the inline source write: a few quick retries, then the caller is told and the change stays pending.</summary>
    public static ResiliencePipeline ForSource(string store, CrossStoreSyncOptions options, TimeProvider time, SyncMetrics metrics, ILogger logger)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (options.SourceRetryAttempts > 0)
        {
            builder.AddRetry(Retry(store, options.SourceRetryAttempts, options, time, metrics, events: null, logger));
        }

        return builder.AddTimeout(options.ApplyTimeout).Build();
    }

    private static RetryStrategyOptions Retry(string store, int attempts, CrossStoreSyncOptions options, TimeProvider time, SyncMetrics metrics, EventHub? events, ILogger logger)
    {
        var tag = new KeyValuePair<string, object?>("store", store);
        return new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && TransientErrors.IsTransient(ex, args.Context.CancellationToken)),
            MaxRetryAttempts = attempts,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.RetryBaseDelay,
            MaxDelay = options.RetryMaxDelay,
            OnRetry = args =>
            {
                metrics.Retries.Add(1, tag);
                SyncLog.ApplyRetrying(logger, store, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception);
                if (events is { HasSubscribers: true })
                {
                    events.Publish(new SyncEvent(SyncEventKind.Retrying, store, 0, 0, 0, null, args.Outcome.Exception?.Message, args.AttemptNumber + 1, time.GetUtcNow()));
                }

                return default;
            },
        };
    }
}
