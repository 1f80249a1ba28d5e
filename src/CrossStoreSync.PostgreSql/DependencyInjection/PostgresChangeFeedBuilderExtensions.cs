using CrossStoreSync.Errors;

using System.Diagnostics.Metrics;
using CrossStoreSync.Configuration;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.PostgreSql.ChangeFeed;
using CrossStoreSync.Sync;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the PostgreSQL logical-replication change feed (CDC).</summary>
public static class CrossStoreSyncPostgresChangeFeedBuilderExtensions
{
    /// <summary>
    /// Follows tables of a PostgreSQL database through logical replication (pgoutput) as a hosted service, so rows
    /// that programs insert, update and delete there with plain SQL reach every store through the engine. The
    /// publication and the replication slot are created when missing; options are validated at start-up. Resolve
    /// <see cref="PostgresChangeFeed"/> to wait for an LSN or to acknowledge a lost slot. Safe to call more than once
    /// (the configurations add up; one feed runs).
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddCrossStoreSync</c>.</param>
    /// <param name="configure">Sets the connection string, slot, publication, followed tables and their mappings.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static ICrossStoreSyncBuilder AddPostgresChangeFeed(this ICrossStoreSyncBuilder builder, Action<PostgresChangeFeedOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddOptions<PostgresChangeFeedOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgresChangeFeedOptions>, PostgresChangeFeedOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        if (services.Any(d => d.ServiceType == typeof(PostgresChangeFeed)))
        {
            return builder;
        }

        services.AddSingleton(sp => new PostgresChangeFeed(
            sp.GetRequiredService<IChangeFeedWriter>(),
            sp.GetRequiredService<IOptions<PostgresChangeFeedOptions>>().Value,
            sp.GetRequiredService<IMeterFactory>(),
            sp.GetService<ILogger<PostgresChangeFeed>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<PostgresChangeFeed>());
        return builder;
    }
}

/// <summary>
/// Turns <see cref="PostgresChangeFeedOptions.Validate"/> failures into an <see cref="OptionsValidationException"/> at
/// start-up, with the message that names the option and quotes the value, and checks that every mapped collection is
/// configured in <c>AddCrossStoreSync</c>.
/// </summary>
internal sealed class PostgresChangeFeedOptionsValidator(IOptions<CrossStoreSyncOptions> sync) : IValidateOptions<PostgresChangeFeedOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgresChangeFeedOptions options)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }

        foreach (var table in options.Tables)
        {
            if (!sync.Value.TryGetCollection(table.Collection, out _))
            {
                return ValidateOptionsResult.Fail($"PostgresChangeFeedOptions.Tables maps {table.Table} to collection {SafeText.Quote(table.Collection)}, which is not configured; add it with CrossStoreSyncOptions.AddCollection.");
            }
        }

        return ValidateOptionsResult.Success;
    }
}
