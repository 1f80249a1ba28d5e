using System.Text.RegularExpressions;
using CrossStoreSync.Neo4j.Internal;

namespace CrossStoreSync.Neo4j.Tests;

/// <summary>
/// Every statement of <see cref="CypherStatements"/> (the only place Cypher is built) carries values as parameters
/// only: no string or number literal but the fixed ones, no parameter outside the declared list, and identifiers only
/// where a label or a relationship type goes, back-quoted and validated.
/// </summary>
public sealed partial class CypherStatementsTests
{
    public static TheoryData<string, string> Statements()
    {
        var data = new TheoryData<string, string>();
        foreach (var label in new[] { "items", "Other_2" })
        {
            data.Add($"KeyConstraint({label})", CypherStatements.KeyConstraint(label));
            data.Add($"BucketIndex({label})", CypherStatements.BucketIndex(label));
            data.Add($"ApplyBatch({label}, no edges)", CypherStatements.ApplyBatch(label, []));
            data.Add($"ApplyBatch({label}, 2 edge groups)", CypherStatements.ApplyBatch(label, [("KNOWS", "people"), ("LINKS_TO", label)]));
            data.Add($"ReadDigests({label})", CypherStatements.ReadDigests(label));
            data.Add($"ScanDigests({label})", CypherStatements.ScanDigests(label));
            data.Add($"Count({label})", CypherStatements.Count(label));
            data.Add($"RemoveByOrigin({label})", CypherStatements.RemoveByOrigin(label));
            data.Add($"PurgeTombstones({label})", CypherStatements.PurgeTombstones(label));
            data.Add($"OutgoingNeighbors({label})", CypherStatements.OutgoingNeighbors(label));
            data.Add($"IncomingNeighbors({label})", CypherStatements.IncomingNeighbors(label));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Statements))]
    public void Statements_use_only_declared_parameters_and_no_value_literals(string name, string statement)
    {
        foreach (Match parameter in ParameterPattern().Matches(statement))
        {
            Assert.True(CypherStatements.Parameters.Contains(parameter.Groups[1].Value), $"{name}: undeclared parameter ${parameter.Groups[1].Value}");
        }

        // The one string literal is the common label, a constant of the catalogue.
        var strings = StringLiteralPattern().Matches(statement).Select(m => m.Value).Distinct().ToArray();
        Assert.True(strings.All(s => s == "'" + CypherStatements.CommonLabel + "'"), $"{name}: string literal(s) {string.Join(", ", strings)}");
        Assert.DoesNotContain("\"", statement, StringComparison.Ordinal);

        // Numbers appear only as computed edge-group indexes and list markers ([1], [0]-index), never as values.
        var withoutAllowed = AllowedNumberPattern().Replace(statement, string.Empty);
        Assert.False(NumberPattern().IsMatch(withoutAllowed), $"{name}: a numeric literal outside the allowed places: {withoutAllowed}");

        // Every identifier spliced in is back-quoted and a valid identifier.
        foreach (Match quoted in QuotedPattern().Matches(statement))
        {
            Assert.Matches("^[A-Za-z][A-Za-z0-9_]{0,63}$", quoted.Groups[1].Value);
        }
    }

    [Theory]
    [InlineData("x`) DETACH DELETE n //")]
    [InlineData("1abc")]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("ünï")]
    public void Identifiers_that_could_break_out_of_a_label_are_refused(string bad)
    {
        Assert.Throws<ArgumentException>(() => CypherStatements.KeyConstraint(bad));
        Assert.Throws<ArgumentException>(() => CypherStatements.Count(bad));
        Assert.Throws<ArgumentException>(() => CypherStatements.ApplyBatch("items", [(bad, "items")]));
        Assert.Throws<ArgumentException>(() => CypherStatements.ApplyBatch("items", [("KNOWS", bad)]));
    }

    [Fact]
    public void Vectors_are_converted_to_floats_in_Cypher()
    {
        // JSON spells 1f as 1, which Neo4j would read as an INTEGER inside a FLOAT list (PROTOCOLS.md §2.2).
        Assert.Contains("[x IN row.vector | toFloat(x)]", CypherStatements.ApplyBatch("items", []), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\$([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex ParameterPattern();

    [GeneratedRegex(@"'[^']*'")]
    private static partial Regex StringLiteralPattern();

    [GeneratedRegex(@"x\.g = \d+\]|\[1\]|\]\[0\]|css_\w+_(id|bucket)|`[^`]*`|_sync_\w+|\$\w+")]
    private static partial Regex AllowedNumberPattern();

    [GeneratedRegex(@"(?<![A-Za-z_])\d+")]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"`([^`]*)`")]
    private static partial Regex QuotedPattern();
}
