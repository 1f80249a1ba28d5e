using System.Collections.Concurrent;
using System.Diagnostics;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Tests.Support;

namespace CrossStoreSync.Tests.Telemetry;

public sealed class TracingTests
{
    private const string StoreName = "vectors-tracing";

    [Fact]
    public async Task Writes_and_applies_are_traced_by_the_CrossStoreSync_activity_source()
    {
        using var testSource = new ActivitySource("CrossStoreSync.Tests.Tracing");
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SyncTelemetry.Name || source.Name == testSource.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var engine = await TestEngine.StartAsync(vectorStoreName: StoreName);
        engine.VectorFaults.RejectKey(Items.Key("refused"), "refused by the test");
        engine.SourceFaults.RejectKey(Items.Key("aborted"), "source says no");

        ActivityTraceId traceId;
        using (var root = testSource.StartActivity("test-root"))
        {
            Assert.NotNull(root);
            traceId = root.TraceId;
            await engine.WriteAndSyncAsync(Items.Entity("traced"));
            var refused = await engine.Manager.WriteAsync(Items.Entity("refused"));
            Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(refused, TestEngine.Timeout));
            await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteAsync(Items.Entity("aborted")));
        }

        var writes = stopped.Where(a => a.OperationName == "crossstoresync.write" && a.TraceId == traceId).ToArray();
        Assert.Equal(3, writes.Length);
        Assert.All(writes, w =>
        {
            Assert.Equal(SyncTelemetry.Name, w.Source.Name);
            Assert.Equal(1, w.GetTagItem("crossstoresync.changes"));
        });
        Assert.Equal(2, writes.Count(w => w.Status == ActivityStatusCode.Unset));
        var failed = Assert.Single(writes, w => w.Status == ActivityStatusCode.Error);
        Assert.Contains("source says no", failed.StatusDescription, StringComparison.Ordinal);

        var applies = stopped.Where(a => a.OperationName == "crossstoresync.apply" && (string?)a.GetTagItem("crossstoresync.store") == StoreName).ToArray();
        Assert.True(applies.Length >= 2, $"Expected an apply activity per batch, saw {applies.Length}.");
        Assert.All(applies, a => Assert.True((int)a.GetTagItem("crossstoresync.batch.size")! >= 1));
        var rejectedApply = Assert.Single(applies, a => a.Status == ActivityStatusCode.Error);
        Assert.Contains("refused by the test", rejectedApply.StatusDescription, StringComparison.Ordinal);
    }
}
