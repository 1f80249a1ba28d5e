using CrossStoreSync.Configuration;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Tests.Configuration;

public sealed class OptionsValidationTests
{
    public static TheoryData<string, string> BadOptions => new()
    {
        { "NodeId=300", "CrossStoreSyncOptions.NodeId is 300; it must be in 0..255" },
        { "NodeId=-1", "CrossStoreSyncOptions.NodeId is -1" },
        { "DispatchBatchSize=0", "CrossStoreSyncOptions.DispatchBatchSize is 0; it must be in 1..100000" },
        { "RetryMaxDelay<RetryBaseDelay", "RetryMaxDelay (00:00:00.0100000) must not be shorter than RetryBaseDelay (00:00:00.2000000)" },
        { "RetryBaseDelay=0", "CrossStoreSyncOptions.RetryBaseDelay is 00:00:00; it must be greater than zero" },
        { "PollInterval=2d", "CrossStoreSyncOptions.PollInterval is 2.00:00:00" },
        { "MaxEntityBytes<MaxDocumentBytes", "MaxEntityBytes (1000) must not be smaller than MaxDocumentBytes (2000)" },
        { "EventBufferCapacity=0", "CrossStoreSyncOptions.EventBufferCapacity is 0" },
        { "no collections", "Collections is empty" },
        { "PartitionLeaseDuration=100ms", "CrossStoreSyncOptions.PartitionLeaseDuration is 00:00:00.1000000; it must be at least 300 ms" },
        { "WorkerId=blank", "CrossStoreSyncOptions.WorkerId is ' '; it must be a non-blank string" },
        { "KeepAppliedFor=0", "CrossStoreSyncOptions.Retention.KeepAppliedFor is 00:00:00; it must be greater than zero" },
        { "KeepAppliedFor=-1s", "CrossStoreSyncOptions.Retention.KeepAppliedFor is -00:00:01; it must be greater than zero" },
        { "TombstoneRetention=0", "CrossStoreSyncOptions.Retention.TombstoneRetention is 00:00:00; it must be greater than zero" },
        { "DeadLetterRetention=-1d", "CrossStoreSyncOptions.Retention.DeadLetterRetention is -1.00:00:00; it must be greater than zero" },
        { "TruncationInterval=0", "CrossStoreSyncOptions.Retention.TruncationInterval is 00:00:00; it must be greater than zero" },
        { "TruncationBatchSize=0", "CrossStoreSyncOptions.Retention.TruncationBatchSize is 0; it must be in 1..100000" },
        { "MaxRetainedEntries<DispatchBatchSize", "CrossStoreSyncOptions.Retention.MaxRetainedEntries is 100; it must be at least DispatchBatchSize (512)" },
        { "MaxRetainedEntries=0", "CrossStoreSyncOptions.Retention.MaxRetainedEntries is 0; it must be at least DispatchBatchSize (512)" },
        { "MaxRetainedBytes<MaxEntityBytes", "CrossStoreSyncOptions.Retention.MaxRetainedBytes is 1000; it must be at least MaxEntityBytes (4194304)" },
        { "UnhealthyRetainedEntries=0", "CrossStoreSyncOptions.Retention.UnhealthyRetainedEntries is 0; it must be at least 1" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Bad_option_stops_the_host_with_a_message_quoting_the_value(string change, string expected)
    {
        using var host = BuildHost(o =>
        {
            if (change != "no collections")
            {
                o.AddCollection("items", 4);
            }

            Apply(o, change);
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(typeof(CrossStoreSyncOptions), ex.OptionsType);
    }

    [Fact]
    public async Task Every_bad_value_is_reported_at_once()
    {
        using var host = BuildHost(o =>
        {
            o.NodeId = 300;
            o.DispatchBatchSize = 0;
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(ex.Failures, f => f.Contains("NodeId is 300", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("DispatchBatchSize is 0", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("Collections is empty", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Valid_options_start_the_host_and_writes_sync()
    {
        using var host = BuildHost(o =>
        {
            TestEngine.FastOptions(o);
            o.NodeId = 255;
        });

        await host.StartAsync();
        try
        {
            var manager = host.Services.GetRequiredService<ISyncManager>();
            var ticket = await manager.WriteAsync(Items.Entity("hosted"));
            Assert.Equal(SyncWaitOutcome.Synced, await manager.WaitForSyncAsync(ticket, TestEngine.Timeout));
            Assert.Equal(255, ticket.Version.NodeId);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void Invalid_collection_name_or_dimension_is_rejected_when_declared()
    {
        var options = new CrossStoreSyncOptions();

        var name = Assert.Throws<ArgumentException>(() => options.AddCollection("bad-name", 4));
        Assert.Equal("name", name.ParamName);
        Assert.Contains("'bad-name'", name.Message, StringComparison.Ordinal);

        var dimension = Assert.Throws<ArgumentOutOfRangeException>(() => options.AddCollection("items", 0));
        Assert.Equal("vectorDimension", dimension.ParamName);
        Assert.Contains("'items'", dimension.Message, StringComparison.Ordinal);
        Assert.Empty(options.Collections);
    }

    private static IHost BuildHost(Action<CrossStoreSyncOptions> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddCrossStoreSync(configure).UseInMemoryStores();
        return builder.Build();
    }

    private static void Apply(CrossStoreSyncOptions o, string change)
    {
        switch (change)
        {
            case "NodeId=300": o.NodeId = 300; break;
            case "NodeId=-1": o.NodeId = -1; break;
            case "DispatchBatchSize=0": o.DispatchBatchSize = 0; break;
            case "RetryMaxDelay<RetryBaseDelay": o.RetryBaseDelay = TimeSpan.FromMilliseconds(200); o.RetryMaxDelay = TimeSpan.FromMilliseconds(10); break;
            case "RetryBaseDelay=0": o.RetryBaseDelay = TimeSpan.Zero; break;
            case "PollInterval=2d": o.PollInterval = TimeSpan.FromDays(2); break;
            case "MaxEntityBytes<MaxDocumentBytes": o.MaxDocumentBytes = 2000; o.MaxEntityBytes = 1000; break;
            case "EventBufferCapacity=0": o.EventBufferCapacity = 0; break;
            case "no collections": break;
            case "PartitionLeaseDuration=100ms": o.PartitionLeaseDuration = TimeSpan.FromMilliseconds(100); break;
            case "WorkerId=blank": o.WorkerId = " "; break;
            case "KeepAppliedFor=0": o.Retention.KeepAppliedFor = TimeSpan.Zero; break;
            case "KeepAppliedFor=-1s": o.Retention.KeepAppliedFor = TimeSpan.FromSeconds(-1); break;
            case "TombstoneRetention=0": o.Retention.TombstoneRetention = TimeSpan.Zero; break;
            case "DeadLetterRetention=-1d": o.Retention.DeadLetterRetention = TimeSpan.FromDays(-1); break;
            case "TruncationInterval=0": o.Retention.TruncationInterval = TimeSpan.Zero; break;
            case "TruncationBatchSize=0": o.Retention.TruncationBatchSize = 0; break;
            case "MaxRetainedEntries<DispatchBatchSize": o.Retention.MaxRetainedEntries = 100; break;
            case "MaxRetainedEntries=0": o.Retention.MaxRetainedEntries = 0; break;
            case "MaxRetainedBytes<MaxEntityBytes": o.Retention.MaxRetainedBytes = 1000; break;
            case "UnhealthyRetainedEntries=0": o.Retention.UnhealthyRetainedEntries = 0; break;
            default: throw new ArgumentOutOfRangeException(nameof(change), change, "Unknown case.");
        }
    }
}
