using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrossStoreSync.Consistency;
using CrossStoreSync.Migration;
using CrossStoreSync.Peering;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Observability;

namespace CrossStoreSync.Observability.Tests;

/// <summary>
/// samples/Observability run for real, scraped over HTTP, and the observability pack checked against it: every metric
/// name in deploy/prometheus's rules and deploy/grafana's dashboard must be one the running code emits. Instrument
/// names come from the library's Meter as it publishes them (a <see cref="MeterListener"/>), not from a list; the
/// Prometheus names are derived from them by the exporter's rules, and those rules are checked against what the
/// exporter really serves on /metrics.
/// </summary>
public sealed partial class ObservabilityTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("css-observability").FullName;
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, Instrument> _instruments = new(StringComparer.Ordinal);
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _listener.InstrumentPublished = (instrument, _) =>
        {
            if (instrument.Meter.Name == SyncTelemetry.Name)
            {
                lock (_instruments)
                {
                    _instruments[instrument.Name] = instrument;
                }
            }
        };
        _listener.Start();

        // Peering with one peer that is not running: the peer instruments are published and its failures counted.
        var own = PeerKeys.Generate();
        var absent = PeerKeys.Generate();
        _app = ObservabilityApp.Build(
        [
            "--urls=http://127.0.0.1:0",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
            "--CrossStoreSync:Collections:notes:VectorDimension=4",
            "--CrossStoreSync:Collections:topics=",
            "--CrossStoreSync:Source:Type=Sqlite",
            $"--CrossStoreSync:Source:DirectoryPath={_directory}",
            "--CrossStoreSync:Source:Durable=false",
            "--CrossStoreSync:Source:VectorStoreName=vectors",
            "--CrossStoreSync:Source:GraphStoreName=graph",
            "--Peering:NodeId=1",
            $"--Peering:SigningKey={own.PrivateKey}",
            "--Peering:RetryBaseDelay=00:00:00.050",
            "--Peering:RetryMaxDelay=00:00:01",
            "--Peering:Peers:0:NodeId=2",
            $"--Peering:Peers:0:Url=http://127.0.0.1:{ClosedPort()}",
            $"--Peering:Peers:0:PublicKey={absent.PublicKey}",
        ]);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _listener.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Rules_and_dashboard_refer_only_to_metrics_the_running_code_emits()
    {
        await RunWorkloadAsync();

        var scraped = await ScrapeAsync();
        Dictionary<string, Instrument> instruments;
        lock (_instruments)
        {
            instruments = new Dictionary<string, Instrument>(_instruments, StringComparer.Ordinal);
        }

        Assert.Contains("crossstoresync.dispatch.lag", instruments.Keys);
        Assert.Contains("crossstoresync.peer.lag", instruments.Keys);

        // The naming rules, checked on every instrument the workload made the exporter serve: all of each one's series
        // names are there, and every crossstoresync_* series is explained by some instrument.
        var expected = instruments.Values.ToDictionary(i => i.Name, PrometheusNames, StringComparer.Ordinal);
        var served = instruments.Values.Where(i => scraped.Contains(expected[i.Name][0])).ToArray();
        Assert.All(served, i => Assert.All(expected[i.Name], name => Assert.Contains(name, scraped)));
        var known = expected.Values.SelectMany(n => n).ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain("crossstoresync_store_dead_letters", known); // counters only exist with _total
        Assert.DoesNotContain("crossstoresync_dispatch_lag_time", known);   // "s" units only with _seconds
        Assert.All(scraped.Where(n => n.StartsWith("crossstoresync_", StringComparison.Ordinal)), n => Assert.Contains(n, known));
        Assert.Contains(served, i => Kind(i) == "counter");
        Assert.Contains(served, i => Kind(i) == "histogram" && i.Unit == "s");
        Assert.Contains(served, i => Kind(i) == "histogram" && i.Unit!.StartsWith('{'));
        Assert.Contains(served, i => Kind(i) == "gauge" && i.Unit == "s");
        Assert.Contains(served, i => Kind(i) == "gauge" && i.Unit!.StartsWith('{'));

        var root = RepositoryRoot();
        var rules = File.ReadAllText(Path.Combine(root, "deploy", "prometheus", "crossstoresync-alerts.yml"));
        var ruleExpressions = RuleExpression().Matches(rules).Select(m => m.Groups[1].Value).ToArray();
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "deploy", "grafana", "crossstoresync-dashboard.json")));
        var panelExpressions = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()!))
            .Concat(dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray()
                .Where(v => v.TryGetProperty("definition", out _)).Select(v => v.GetProperty("definition").GetString()!))
            .ToArray();
        Assert.True(ruleExpressions.Length >= 4, "Expected the alert rules' expressions.");
        Assert.True(panelExpressions.Length >= 12, "Expected the dashboard's panel expressions.");

        var unknown = ruleExpressions.Select(e => ("rule", e)).Concat(panelExpressions.Select(e => ("panel", e)))
            .SelectMany(x => MetricName().Matches(x.Item2).Select(m => $"{x.Item1}: {m.Value} in {x.Item2}"))
            .Where(x => !known.Contains(x.Split(' ')[1]))
            .ToArray();
        Assert.True(unknown.Length == 0, "Metric names that the code does not emit:\n" + string.Join("\n", unknown) + "\nKnown: " + string.Join(", ", known.Order(StringComparer.Ordinal)));

        // What the issue asks the pack to cover is there.
        string[] covered =
        [
            "crossstoresync_store_applied_total", "crossstoresync_dispatch_lag", "crossstoresync_dispatch_lag_time_seconds", "crossstoresync_store_retries_total",
            "crossstoresync_store_dead_letters_total", "crossstoresync_store_apply_duration_seconds_bucket", "crossstoresync_consistency_inconsistencies_total",
            "crossstoresync_migration_entities_total",

            // Peers and retention, for nodes that replicate and logs that are truncated.
            "crossstoresync_peer_lag", "crossstoresync_peer_lag_time_seconds", "crossstoresync_peer_errors_total", "crossstoresync_peer_bytes_total",
            "crossstoresync_replication_states_total", "crossstoresync_replication_conflicts_total", "crossstoresync_log_retained", "crossstoresync_retention_behind",
            "crossstoresync_store_needs_rebuild",
        ];
        Assert.All(covered, name => Assert.Contains(panelExpressions, e => e.Contains(name, StringComparison.Ordinal)));
        string[] alerts =
        [
            "CrossStoreSyncReplicaLagging", "CrossStoreSyncDeadLettersIncreasing", "CrossStoreSyncDispatcherFaulted", "CrossStoreSyncInconsistenciesFound",
            "CrossStoreSyncPeerLagging", "CrossStoreSyncPeerFailing", "CrossStoreSyncConflictsDetected", "CrossStoreSyncReplicaNeedsRebuild", "CrossStoreSyncRetentionHeldBack",
        ];
        Assert.All(alerts, alert => Assert.Contains($"alert: {alert}", rules, StringComparison.Ordinal));
        var runbook = File.ReadAllText(Path.Combine(root, "docs", "runbook.md"));
        Assert.All(alerts, alert => Assert.Contains($"## {alert}", runbook, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Health_is_served_over_HTTP_with_the_lag_of_every_replica_and_every_peer()
    {
        // An exchange with the absent peer fails now (not whenever the background loop tries next).
        var peering = _app.Services.GetRequiredService<IPeerReplication>();
        await Assert.ThrowsAnyAsync<Exception>(() => peering.SyncNowAsync(2));
        Assert.NotNull(Assert.Single(peering.GetStatus()).LastErrorCode);

        var response = await _http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // degraded still answers 200
        using var health = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("Degraded", health.RootElement.GetProperty("status").GetString());
        var checks = health.RootElement.GetProperty("checks").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
        Assert.Equal(["crossstoresync", "crossstoresync-peers"], checks.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("Healthy", checks["crossstoresync"].GetProperty("status").GetString());
        Assert.True(checks["crossstoresync"].GetProperty("data").TryGetProperty("vectors.lag", out _));
        var peers = checks["crossstoresync-peers"];
        Assert.Equal("Degraded", peers.GetProperty("status").GetString());
        Assert.Contains("node-2", peers.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.True(peers.GetProperty("data").TryGetProperty("node-2.lag_seconds", out _));
    }

    private static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task RunWorkloadAsync()
    {
        for (var i = 0; i < 20; i++)
        {
            var response = await _http.PostAsJsonAsync($"/notes/n-{i}", new NoteRequest($"note {i}", "text", [i, 1, 2, 3], $"t-{i % 3}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Drift behind the library's back, found by a check and repaired: inconsistency, read and repair counters.
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, "vectors.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM vectors WHERE id = 'n-3'";
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        var checker = _app.Services.GetRequiredService<IConsistencyChecker>();
        var report = await checker.CheckAsync("notes");
        Assert.False(report.IsConsistent);
        var repair = await checker.RepairAsync(report);
        var sync = _app.Services.GetRequiredService<ISyncManager>();
        Assert.Equal(SyncWaitOutcome.Synced, await sync.WaitForSyncAsync(repair.Ticket!.Value, TimeSpan.FromSeconds(30)));

        // A migration: entity, batch size and batch duration instruments.
        var migration = await _app.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest { Id = "observability", Target = "graph", Verify = false });
        Assert.Equal(0, migration.Failed);
    }

    private async Task<HashSet<string>> ScrapeAsync()
    {
        var text = await _http.GetStringAsync("/metrics");
        return text.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => line[..line.IndexOfAny(['{', ' '])])
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// The series names the OpenTelemetry Prometheus exporter gives an instrument: dots to underscores, the unit as a
    /// suffix (<c>s</c> → <c>_seconds</c>, <c>By</c> → <c>_bytes</c>, <c>{annotations}</c> dropped), <c>_total</c> for
    /// counters, <c>_bucket</c>/<c>_sum</c>/<c>_count</c> for histograms. The first name is the one always served.
    /// </summary>
    private static string[] PrometheusNames(Instrument instrument)
    {
        var name = InvalidNameCharacter().Replace(instrument.Name, "_");
        var unit = instrument.Unit switch
        {
            null or "" => "",
            "s" => "seconds",
            "ms" => "milliseconds",
            "By" => "bytes",
            var u when u.StartsWith('{') => "",
            var u => InvalidNameCharacter().Replace(u, "_"),
        };
        if (unit.Length > 0 && !name.EndsWith("_" + unit, StringComparison.Ordinal))
        {
            name += "_" + unit;
        }

        return Kind(instrument) switch
        {
            "counter" => [name + "_total"],
            "histogram" => [name + "_bucket", name + "_sum", name + "_count"],
            _ => [name],
        };
    }

    private static string Kind(Instrument instrument)
    {
        var type = instrument.GetType();
        var definition = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
        return definition == typeof(Counter<>) || definition == typeof(ObservableCounter<>) ? "counter"
            : definition == typeof(Histogram<>) ? "histogram"
            : "gauge";
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CrossStoreSync.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("No CrossStoreSync.sln above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^\s*expr:\s*(.+)$", RegexOptions.Multiline)]
    private static partial Regex RuleExpression();

    [GeneratedRegex("crossstoresync_[a-z0-9_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex("[^a-zA-Z0-9_:]")]
    private static partial Regex InvalidNameCharacter();
}
