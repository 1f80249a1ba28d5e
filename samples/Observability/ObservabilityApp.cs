using System.Text.Json;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Telemetry;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Observability;

/// <summary>
/// The library's telemetry wired up: the <c>CrossStoreSync</c> Meter and ActivitySource into OpenTelemetry, metrics on
/// a Prometheus scrape endpoint (<c>/metrics</c>) and, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, metrics and
/// traces over OTLP; the health check on <c>/health</c>. A small API (<c>POST /notes/{id}</c>, <c>GET /status</c>)
/// gives the dashboards something to show.
/// </summary>
public static class ObservabilityApp
{
    /// <summary>Builds the application from the usual sources (appsettings.json, environment, command line).</summary>
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var settings = builder.Configuration.GetSection("Observability");

        // Stores and options from configuration, as an application would (see the README's configuration section).
        var sync = builder.Services.AddCrossStoreSync(builder.Configuration.GetSection("CrossStoreSync"), types => types.AddSqlite().AddPostgreSql());
        var health = builder.Services.AddHealthChecks().AddCrossStoreSync(
            settings.GetValue("MaxLagChanges", 10_000L),
            settings.GetValue("MaxLagTime", TimeSpan.FromMinutes(1)));

        // Peer replication when a "Peering" section names this node (NodeId, SigningKey or SigningKeyFile, Peers): its
        // instruments join the same Meter, its lag joins /health, and its protocol is served by this app.
        var peering = builder.Configuration.GetSection("Peering");
        if (peering.Exists())
        {
            sync.AddPeering(o => peering.Bind(o));
            health.AddCrossStoreSyncPeering(
                settings.GetValue("MaxPeerLagEntries", 10_000L),
                settings.GetValue("MaxPeerLagTime", TimeSpan.FromMinutes(1)));
        }

        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(settings["ServiceName"] ?? "crossstoresync-observability"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(SyncTelemetry.Name).AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            })
            .WithTracing(tracing =>
            {
                tracing.AddSource(SyncTelemetry.Name);
                if (otlp)
                {
                    tracing.AddOtlpExporter();
                }
            });

        var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        if (peering.Exists())
        {
            app.MapCrossStoreSyncPeering();
        }

        app.MapHealthChecks("/health", new HealthCheckOptions
        {
            // Degraded (a replica lagging) still answers 200, so a load balancer keeps the instance; Unhealthy (a
            // dispatcher stopped by a corrupted log) answers 503.
            ResultStatusCodes = { [HealthStatus.Healthy] = 200, [HealthStatus.Degraded] = 200, [HealthStatus.Unhealthy] = 503 },
            ResponseWriter = WriteHealthAsync,
        });
        app.MapPost("/notes/{id}", async (string id, NoteRequest note, ISyncManager sync, CancellationToken cancellationToken) =>
        {
            var entity = SyncEntity.FromJson(
                new EntityKey("notes", id),
                JsonSerializer.Serialize(new { title = note.Title, text = note.Text }),
                vector: note.Vector,
                edges: note.Topic is null ? null : [new SyncEdge("ABOUT", new EntityKey("topics", note.Topic))]);
            var ticket = await sync.WriteAsync(entity, cancellationToken);
            var outcome = await sync.WaitForSyncAsync(ticket, TimeSpan.FromSeconds(10), cancellationToken);
            return Results.Ok(new { lsn = ticket.Lsns.Last, outcome = outcome.ToString() });
        });
        app.MapGet("/status", async (ISyncManager sync, CancellationToken cancellationToken) => Results.Ok(await sync.GetStatisticsAsync(cancellationToken)));
        return app;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.Select(e => new { name = e.Key, status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        });
    }
}

/// <summary>The body of <c>POST /notes/{id}</c>.</summary>
/// <param name="Title">The title.</param>
/// <param name="Text">The text.</param>
/// <param name="Vector">The embedding (4 numbers for the sample's collection).</param>
/// <param name="Topic">A topic the note is about, or null.</param>
public sealed record NoteRequest(string Title, string Text, float[]? Vector, string? Topic);
