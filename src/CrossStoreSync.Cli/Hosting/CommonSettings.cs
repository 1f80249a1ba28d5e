using System.ComponentModel;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Hosting;

/// <summary>Options every command takes: where the configuration is, and how to answer.</summary>
internal class CommonSettings : CommandSettings
{
    [CommandOption("-c|--config <FILE>")]
    [Description("A JSON configuration file of the application (repeatable; later files override earlier ones). Default: appsettings.json and appsettings.{DOTNET_ENVIRONMENT}.json in the current folder. Relative paths in it resolve against the first file's folder. Environment variables (CrossStoreSync__Source__DirectoryPath=...) override files.")]
    public string[] ConfigFiles { get; set; } = [];

    [CommandOption("--section <NAME>")]
    [Description("The configuration section of CrossStoreSync.")]
    [DefaultValue("CrossStoreSync")]
    public string Section { get; set; } = "CrossStoreSync";

    [CommandOption("--plugin <DLL>")]
    [Description("An assembly of the application with a public static ConfigureCrossStoreSync(ICrossStoreSyncBuilder) method, called after the configuration is bound: registers transforms (re-embeddings) and stores the configuration cannot express. Repeatable.")]
    public string[] Plugins { get; set; } = [];

    [CommandOption("--json")]
    [Description("Write one JSON document to standard output instead of tables.")]
    public bool Json { get; set; }

    [CommandOption("--verbose")]
    [Description("Log the library's warnings and information to standard error.")]
    public bool Verbose { get; set; }
}
