using CrossStoreSync.Errors;

using Microsoft.Extensions.Options;

namespace CrossStoreSync.Configuration;

/// <summary>Validates <see cref="CrossStoreSyncOptions"/> at start-up, quoting every bad value.</summary>
internal sealed class CrossStoreSyncOptionsValidator : IValidateOptions<CrossStoreSyncOptions>
{
    public ValidateOptionsResult Validate(string? name, CrossStoreSyncOptions options)
    {
        var failures = new List<string>();
        Range(failures, nameof(options.NodeId), options.NodeId, 0, Model.HlcTimestamp.MaxNodeId);
        Range(failures, nameof(options.DispatchBatchSize), options.DispatchBatchSize, 1, 100_000);
        Range(failures, nameof(options.MaxDocumentBytes), options.MaxDocumentBytes, 2, 256 * 1024 * 1024);
        Range(failures, nameof(options.MaxEntityBytes), options.MaxEntityBytes, 2, 512 * 1024 * 1024);
        Range(failures, nameof(options.MaxEdgesPerEntity), options.MaxEdgesPerEntity, 0, 1_000_000);
        Range(failures, nameof(options.MaxWriteBatchSize), options.MaxWriteBatchSize, 1, 1_000_000);
        Range(failures, nameof(options.SourceRetryAttempts), options.SourceRetryAttempts, 0, 100);
        Range(failures, nameof(options.EventBufferCapacity), options.EventBufferCapacity, 1, 10_000_000);
        Positive(failures, nameof(options.RetryBaseDelay), options.RetryBaseDelay);
        Positive(failures, nameof(options.RetryMaxDelay), options.RetryMaxDelay);
        Positive(failures, nameof(options.ApplyTimeout), options.ApplyTimeout);
        Positive(failures, nameof(options.PollInterval), options.PollInterval);
        Positive(failures, nameof(options.CursorCheckpointInterval), options.CursorCheckpointInterval);
        Positive(failures, nameof(options.PartitionLeaseDuration), options.PartitionLeaseDuration);
        Positive(failures, nameof(options.MaxRetryAfter), options.MaxRetryAfter);
        if (options.PartitionLeaseDuration > TimeSpan.Zero && options.PartitionLeaseDuration < TimeSpan.FromMilliseconds(300))
        {
            failures.Add($"CrossStoreSyncOptions.PartitionLeaseDuration is {options.PartitionLeaseDuration}; it must be at least 300 ms (leases are renewed every third of it).");
        }

        if (string.IsNullOrWhiteSpace(options.WorkerId) || options.WorkerId.Length > 200)
        {
            failures.Add($"CrossStoreSyncOptions.WorkerId is {SafeText.Quote(options.WorkerId)}; it must be a non-blank string of at most 200 characters, unique per running process.");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            failures.Add($"CrossStoreSyncOptions.RetryMaxDelay ({options.RetryMaxDelay}) must not be shorter than RetryBaseDelay ({options.RetryBaseDelay}).");
        }

        if (options.MaxEntityBytes < options.MaxDocumentBytes)
        {
            failures.Add($"CrossStoreSyncOptions.MaxEntityBytes ({options.MaxEntityBytes}) must not be smaller than MaxDocumentBytes ({options.MaxDocumentBytes}).");
        }

        ValidateRetention(failures, options);
        if (options.Collections.Count == 0)
        {
            failures.Add("CrossStoreSyncOptions.Collections is empty: declare at least one collection with AddCollection(name, vectorDimension).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateRetention(List<string> failures, CrossStoreSyncOptions options)
    {
        var r = options.Retention;
        Duration(failures, "Retention.KeepAppliedFor", r.KeepAppliedFor, TimeSpan.FromDays(3650));
        Duration(failures, "Retention.TruncationInterval", r.TruncationInterval, TimeSpan.FromDays(1));
        Duration(failures, "Retention.TombstoneRetention", r.TombstoneRetention, TimeSpan.FromDays(3650));
        Duration(failures, "Retention.DeadLetterRetention", r.DeadLetterRetention, TimeSpan.FromDays(3650));
        Range(failures, "Retention.TruncationBatchSize", r.TruncationBatchSize, 1, 100_000);
        if (r.UnhealthyRetainedEntries < 1)
        {
            failures.Add($"CrossStoreSyncOptions.Retention.UnhealthyRetainedEntries is {r.UnhealthyRetainedEntries}; it must be at least 1.");
        }

        // A cap below one dispatch batch would cut off a replica that is merely reading its next batch.
        if (r.MaxRetainedEntries is { } entries && entries < options.DispatchBatchSize)
        {
            failures.Add($"CrossStoreSyncOptions.Retention.MaxRetainedEntries is {entries}; it must be at least DispatchBatchSize ({options.DispatchBatchSize}), or null for no cap.");
        }

        if (r.MaxRetainedBytes is { } bytes && bytes < options.MaxEntityBytes)
        {
            failures.Add($"CrossStoreSyncOptions.Retention.MaxRetainedBytes is {bytes}; it must be at least MaxEntityBytes ({options.MaxEntityBytes}), or null for no cap.");
        }
    }

    private static void Duration(List<string> failures, string field, TimeSpan value, TimeSpan max)
    {
        if (value <= TimeSpan.Zero || value > max)
        {
            failures.Add($"CrossStoreSyncOptions.{field} is {value}; it must be greater than zero and at most {max.TotalDays:0} days.");
        }
    }

    private static void Range(List<string> failures, string field, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            failures.Add($"CrossStoreSyncOptions.{field} is {value}; it must be in {min}..{max}.");
        }
    }

    private static void Positive(List<string> failures, string field, TimeSpan value)
    {
        if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1))
        {
            failures.Add($"CrossStoreSyncOptions.{field} is {value}; it must be greater than zero and at most one day.");
        }
    }
}
