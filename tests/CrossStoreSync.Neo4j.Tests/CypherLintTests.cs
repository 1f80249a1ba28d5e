using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrossStoreSync.Neo4j.Internal;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>
/// Every statement of <see cref="CypherStatements"/>, built the way the adapter builds it, checked by Neo4j's own Cypher
/// front end — its parser and semantic analysis, compiled to JavaScript (npm <c>@neo4j-cypher/language-support</c>,
/// pinned in eng/cypher-lint, installed by eng/test.sh) — for Cypher 5 and Cypher 25, with every parameter declared.
/// Any error or warning (deprecations included) fails. Negative controls show the check can fail.
/// </summary>
public sealed class CypherLintTests
{
    private static readonly string[] Versions = ["CYPHER 5", "CYPHER 25"];
    private static readonly Lazy<Task<Dictionary<string, List<Result>>>> Lint = new(RunLintAsync);

    /// <summary>One sample value per parameter the catalogue declares, shaped like what the adapter sends.</summary>
    private static JsonObject Parameters() => new()
    {
        ["rows"] = new JsonArray(new JsonObject
        {
            ["id"] = "a", ["version"] = 1_700_000_000_000L, ["hash"] = "00ff", ["bucket"] = 7, ["deleted"] = false, ["origin"] = null,
            ["vector"] = new JsonArray(0.5, 1), ["edges"] = new JsonArray(new JsonObject { ["g"] = 0, ["id"] = "b", ["props"] = "{}", ["ord"] = 0 }),
        }),
        ["ids"] = new JsonArray("a", "b"),
        ["after"] = string.Empty,
        ["first"] = 0,
        ["last"] = uint.MaxValue,
        ["limit"] = 256,
        ["origin"] = "migration-1",
        ["id"] = "a",
        ["type"] = "KNOWS",
        ["version"] = 1_700_000_000_000L,
    };

    /// <summary>Statements Neo4j must reject, each with (part of) the message it must give.</summary>
    private static readonly (string Name, string Cypher, string Expected)[] Controls =
    [
        ("misspelt clause", "MATCH (n:`items`) RETRUN n", "Invalid input 'RETRUN'"),
        ("undefined variable", "MATCH (n:`items`) RETURN m.id AS id", "Variable `m` not defined"),
        ("MATCH inside FOREACH", "UNWIND $rows AS row FOREACH (x IN row.edges | MATCH (t {id: x.id}) DELETE t)", "Invalid use of MATCH inside FOREACH"),
        ("undeclared parameter", "MATCH (n:`items` {id: $nope}) RETURN n.id AS id", "Parameter $nope is not defined."),
        ("deprecated function", "MATCH (n:`items`) WHERE id(n) = 0 RETURN n.id AS id", "deprecated"),
    ];

    public static TheoryData<string> StatementNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Catalogue().Keys)
        {
            data.Add(name);
        }

        return data;
    }

    /// <summary>Every statement of the catalogue, for two labels and with and without edge groups, as the adapter splices them.</summary>
    private static Dictionary<string, string> Catalogue()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var row in CypherStatementsTests.Statements())
        {
            result.Add((string)row[0], (string)row[1]);
        }

        return result;
    }

    [Theory]
    [MemberData(nameof(StatementNames))]
    public async Task Neo4js_front_end_accepts_the_statement_in_Cypher_5_and_25_without_errors_or_warnings(string name)
    {
        var results = (await Lint.Value)[name];
        Assert.Equal(Versions.Length, results.Count);
        foreach (var result in results)
        {
            Assert.True(result.Crash is null, $"{name}, {result.Version}: the semantic analysis crashed: {result.Crash}");
            Assert.True(
                result.Diagnostics.Count == 0,
                $"{name}, {result.Version}:\n{Catalogue()[name]}\n" + string.Join('\n', result.Diagnostics.Select(d => $"  {d.Severity} ({d.Source}) at {d.Line}:{d.Column}: {d.Message}")));
        }
    }

    [Fact]
    public async Task Negative_controls_are_reported_so_the_check_can_fail()
    {
        var all = await Lint.Value;
        foreach (var (name, _, expected) in Controls)
        {
            foreach (var result in all["control: " + name])
            {
                Assert.Null(result.Crash);
                Assert.True(
                    result.Diagnostics.Any(d => d.Severity is "error" or "warning" && d.Message.Contains(expected, StringComparison.Ordinal)),
                    $"{name}, {result.Version}: expected a diagnostic containing \"{expected}\", got: {string.Join("; ", result.Diagnostics.Select(d => d.Message))}");
            }
        }
    }

    [Fact]
    public async Task A_crash_of_the_analysis_is_reported_not_read_as_a_clean_statement()
    {
        var results = (await Lint.Value)["control: crash"];
        Assert.All(results, r => Assert.Contains("simulated crash", r.Crash, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_declared_parameter_has_a_sample_value_and_no_other()
    {
        Assert.Equal(CypherStatements.Parameters.Order(StringComparer.Ordinal), Parameters().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    private static async Task<Dictionary<string, List<Result>>> RunLintAsync()
    {
        var directory = Path.Combine(RepositoryRoot(), "eng", "cypher-lint");
        if (!Directory.Exists(Path.Combine(directory, "node_modules", "@neo4j-cypher", "language-support")))
        {
            throw new InvalidOperationException($"The Cypher linter is not installed: run `npm ci` in {directory} (eng/test.sh does it), with Node.js 20 or later.");
        }

        var statements = new JsonArray();
        foreach (var (name, cypher) in Catalogue())
        {
            statements.Add(new JsonObject { ["name"] = name, ["cypher"] = cypher });
        }

        foreach (var (name, cypher, _) in Controls)
        {
            statements.Add(new JsonObject { ["name"] = "control: " + name, ["cypher"] = cypher });
        }

        statements.Add(new JsonObject { ["name"] = "control: crash", ["cypher"] = "RETURN 1 AS one", ["simulateCrash"] = true });
        var input = new JsonObject { ["versions"] = new JsonArray(Versions.Select(v => (JsonNode)v).ToArray()), ["parameters"] = Parameters(), ["statements"] = statements };

        var start = new ProcessStartInfo("node", ["lint.mjs"])
        {
            WorkingDirectory = directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start node.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input.ToJsonString());
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"eng/cypher-lint/lint.mjs exited with {process.ExitCode}: {await stderr}");
        }

        var results = JsonSerializer.Deserialize<List<Result>>(await stdout, new JsonSerializerOptions(JsonSerializerDefaults.Web))
            ?? throw new InvalidOperationException("eng/cypher-lint/lint.mjs printed no results.");
        return results.GroupBy(r => r.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
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

        throw new InvalidOperationException($"CrossStoreSync.sln not found above {AppContext.BaseDirectory}.");
    }

    private sealed record Result(string Name, string Version, List<Diagnostic> Diagnostics, string? Crash);

    private sealed record Diagnostic(string Severity, string Message, int Line, int Column, string Source);
}
