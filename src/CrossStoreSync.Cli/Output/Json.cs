using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrossStoreSync.Cli.Output;

/// <summary>The <c>--json</c> output: one indented JSON document on standard output, camelCase names, enums as strings.</summary>
internal static class Json
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static void Write(object document)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(document, document.GetType(), Options));
        Console.Out.Flush();
    }
}
