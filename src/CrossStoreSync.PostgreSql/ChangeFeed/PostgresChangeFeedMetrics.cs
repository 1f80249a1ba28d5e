using System.Diagnostics.Metrics;
using CrossStoreSync.Telemetry;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>The feed's instruments, on the library's shared <c>CrossStoreSync</c> meter; every measurement is tagged with the feed.</summary>
internal sealed class PostgresChangeFeedMetrics
{
    private readonly KeyValuePair<string, object?> _feed;

    public PostgresChangeFeedMetrics(IMeterFactory meterFactory, string feed, Func<long> confirmedLsn)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _feed = new KeyValuePair<string, object?>("feed", feed);
        var meter = meterFactory.Create(SyncTelemetry.Name);
        Changes = meter.CreateCounter<long>("crossstoresync.cdc.changes", "{change}", "Row changes read from the replication stream, by outcome (written, skipped after a restart, ignored).");
        BatchDuration = meter.CreateHistogram<double>("crossstoresync.cdc.batch.duration", "s", "Duration of one batch write through the engine, position included.");
        Heartbeats = meter.CreateCounter<long>("crossstoresync.cdc.heartbeats", "{heartbeat}", "Heartbeats that came back through the slot.");
        Reconnects = meter.CreateCounter<long>("crossstoresync.cdc.reconnects", "{reconnect}", "Reconnections after a lost replication connection.");
        meter.CreateObservableGauge("crossstoresync.cdc.confirmed_lsn", () => new Measurement<long>(confirmedLsn(), _feed), "{lsn}", "The last LSN confirmed to the server as durably handled.");
    }

    public Counter<long> Changes { get; }

    public Histogram<double> BatchDuration { get; }

    public Counter<long> Heartbeats { get; }

    public Counter<long> Reconnects { get; }

    public void AddChanges(long count, string outcome)
    {
        if (count > 0)
        {
            Changes.Add(count, _feed, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }

    public void RecordBatch(double seconds) => BatchDuration.Record(seconds, _feed);

    public void Heartbeat() => Heartbeats.Add(1, _feed);

    public void Reconnect() => Reconnects.Add(1, _feed);
}
