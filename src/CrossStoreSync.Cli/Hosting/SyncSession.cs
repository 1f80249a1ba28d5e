using System.Reflection;
using System.Runtime.Loader;
using CrossStoreSync.Configuration;
using CrossStoreSync.Consistency;
using CrossStoreSync.DependencyInjection;
using CrossStoreSync.Errors;
using CrossStoreSync.Log;
using CrossStoreSync.Migration;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Cli.Hosting;

/// <summary>
/// The engine the tool talks to, built from the application's configuration exactly as the application builds its
/// own. Read-only commands open it with <c>dispatch: false</c> (<see cref="CrossStoreSyncOptions.RunDispatchers"/>):
/// nothing is applied or resolved by the tool, so it can run beside the application. Commands that write (repair
/// --apply, migrate, replay) dispatch, so they can wait for their changes to reach every store.
/// </summary>
internal sealed class SyncSession : IAsyncDisposable
{
    private readonly ServiceProvider _provider;

    private SyncSession(ServiceProvider provider, string describedSource)
    {
        _provider = provider;
        DescribedSource = describedSource;
    }

    /// <summary>Where the configuration came from, for messages.</summary>
    public string DescribedSource { get; }

    public ISyncManager Manager => _provider.GetRequiredService<ISyncManager>();

    public IConsistencyChecker Checker => _provider.GetRequiredService<IConsistencyChecker>();

    public IMigrationManager Migrations => _provider.GetRequiredService<IMigrationManager>();

    public IChangeLogInspector Inspector => _provider.GetRequiredService<IChangeLogInspector>();

    public CrossStoreSyncOptions Options => _provider.GetRequiredService<IOptions<CrossStoreSyncOptions>>().Value;

    /// <summary>Reads the configuration and builds the engine (not started: the first call starts it).</summary>
    /// <exception cref="CliException">A configuration file is missing, the section is absent, or the section is invalid.</exception>
    public static SyncSession Open(CommonSettings settings, bool dispatch)
    {
        var (configuration, described) = ReadConfiguration(settings);
        var section = configuration.GetSection(settings.Section);
        if (!section.Exists())
        {
            throw new CliException($"The configuration has no {SafeText.Quote(settings.Section)} section ({described}). Point --config at the application's appsettings.json, or set --section.");
        }

        var services = new ServiceCollection();
        services.AddLogging(logging =>
        {
            logging.ClearProviders();
            if (settings.Verbose)
            {
                logging.SetMinimumLevel(LogLevel.Information);
                logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            }
        });

        ICrossStoreSyncBuilder builder;
        try
        {
            builder = services.AddCrossStoreSync(section, types => types.AddSqlite().AddPostgreSql().AddSurrealDb().AddQdrant().AddNeo4j());
        }
        catch (CrossStoreSyncConfigurationException ex)
        {
            throw new CliException(ex.Message + $" ({described})", ex);
        }

        foreach (var plugin in settings.Plugins)
        {
            ConfigurePlugin(builder, plugin);
        }

        services.PostConfigure<CrossStoreSyncOptions>(o => o.RunDispatchers = dispatch);
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false, ValidateScopes = true });
        try
        {
            // Options are validated here, with the same validators the application runs at start-up.
            _ = provider.GetRequiredService<IOptions<CrossStoreSyncOptions>>().Value;
        }
        catch (OptionsValidationException ex)
        {
            provider.Dispose();
            throw new CliException($"The CrossStoreSync configuration is invalid: {ex.Message} ({described})", ex);
        }

        return new SyncSession(provider, described);
    }

    /// <summary>Stops the engine (dispatchers save their cursors) and releases the stores.</summary>
    public async ValueTask DisposeAsync()
    {
        // The engine is stopped first, as a host stops its hosted services before disposing: the container disposes
        // singletons in reverse creation order, which would close the stores under dispatchers still running.
        if (_provider.GetService<ISyncManager>() is IAsyncDisposable engine)
        {
            await engine.DisposeAsync().ConfigureAwait(false);
        }

        await _provider.DisposeAsync().ConfigureAwait(false);
    }

    private static (IConfiguration Configuration, string Described) ReadConfiguration(CommonSettings settings)
    {
        var builder = new ConfigurationBuilder();
        string described;
        if (settings.ConfigFiles.Length == 0)
        {
            var environment = Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT") ?? Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT");
            var folder = Directory.GetCurrentDirectory();
            builder.AddJsonFile(Path.Combine(folder, "appsettings.json"), optional: true);
            if (!string.IsNullOrEmpty(environment))
            {
                builder.AddJsonFile(Path.Combine(folder, $"appsettings.{environment}.json"), optional: true);
            }

            described = $"read from {Path.Combine(folder, "appsettings.json")} if present and the environment";
        }
        else
        {
            var files = settings.ConfigFiles.Select(Path.GetFullPath).ToArray();
            foreach (var file in files)
            {
                if (!File.Exists(file))
                {
                    throw new CliException($"Configuration file {SafeText.Quote(file)} does not exist.");
                }

                builder.AddJsonFile(file, optional: false);
            }

            // The application runs from its own folder: relative paths in its configuration (a SQLite DirectoryPath)
            // mean that folder, not wherever the tool was started.
            Directory.SetCurrentDirectory(Path.GetDirectoryName(files[0])!);
            described = "read from " + string.Join(", ", files) + " and the environment";
        }

        builder.AddEnvironmentVariables();
        try
        {
            return (builder.Build(), described);
        }
        catch (InvalidDataException ex)
        {
            throw new CliException($"A configuration file is not valid JSON: {ex.Message}", ex);
        }
        catch (FormatException ex)
        {
            throw new CliException($"A configuration file is not valid JSON: {ex.Message}", ex);
        }
    }

    private static void ConfigurePlugin(ICrossStoreSyncBuilder builder, string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new CliException($"Plugin {SafeText.Quote(full)} does not exist.");
        }

        // Loaded into the default context so it shares the tool's CrossStoreSync assemblies (one ICrossStoreSyncBuilder type);
        // its own dependencies are found beside it.
        var folder = Path.GetDirectoryName(full)!;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            var candidate = Path.Combine(folder, name.Name + ".dll");
            return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
        };
        var assembly = AssemblyLoadContext.Default.LoadFromAssemblyPath(full);
        var methods = assembly.GetExportedTypes()
            .Where(t => t.IsAbstract && t.IsSealed)
            .Select(t => t.GetMethod("ConfigureCrossStoreSync", BindingFlags.Public | BindingFlags.Static, [typeof(ICrossStoreSyncBuilder)]))
            .OfType<MethodInfo>()
            .ToArray();
        if (methods.Length == 0)
        {
            throw new CliException($"Plugin {SafeText.Quote(full)} has no public static ConfigureCrossStoreSync(ICrossStoreSyncBuilder) method in a public static class.");
        }

        foreach (var method in methods)
        {
            method.Invoke(null, [builder]);
        }
    }
}
