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
        if (options.PartitionLeaseDuration > TimeSpan.Zero && options.PartitionLeaseDuration < TimeSpan.FromMilliseconds(300))
        {
            failures.Add($"CrossStoreSyncOptions.PartitionLeaseDuration is {options.PartitionLeaseDuration}; it must be at least 300 ms (leases are renewed every third of it).");
        }

        if (string.IsNullOrWhiteSpace(options.WorkerId) || options.WorkerId.Length > 200)
        {
            failures.Add($"CrossStoreSyncOptions.WorkerId is '{options.WorkerId}'; it must be a non-blank string of at most 200 characters, unique per running process.");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            failures.Add($"CrossStoreSyncOptions.RetryMaxDelay ({options.RetryMaxDelay}) must not be shorter than RetryBaseDelay ({options.RetryBaseDelay}).");
        }

        if (options.MaxEntityBytes < options.MaxDocumentBytes)
        {
            failures.Add($"CrossStoreSyncOptions.MaxEntityBytes ({options.MaxEntityBytes}) must not be smaller than MaxDocumentBytes ({options.MaxDocumentBytes}).");
        }

        if (options.Collections.Count == 0)
        {
            failures.Add("CrossStoreSyncOptions.Collections is empty: declare at least one collection with AddCollection(name, vectorDimension).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
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
