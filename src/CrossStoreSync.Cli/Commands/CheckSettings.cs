using System.ComponentModel;
using System.Globalization;
using CrossStoreSync.Cli.Hosting;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using Spectre.Console.Cli;

namespace CrossStoreSync.Cli.Commands;

/// <summary>What to check: shared by <c>check</c> and <c>repair</c>.</summary>
internal class CheckSettings : CommonSettings
{
    [CommandOption("--collection <NAME>")]
    [Description("A collection to check (repeatable). Default: every configured collection.")]
    public string[] Collections { get; set; } = [];

    [CommandOption("--store <NAME>")]
    [Description("A replica to compare with the source (repeatable). Default: every replica.")]
    public string[] Stores { get; set; } = [];

    [CommandOption("--mode <MODE>")]
    [Description("full (Merkle trees, finds every difference), bloom (memory-bounded) or sampling.")]
    [DefaultValue("full")]
    public string Mode { get; set; } = "full";

    [CommandOption("--deep")]
    [Description("Also compare the content each store really holds, finding edits made behind the library's back.")]
    public bool Deep { get; set; }

    [CommandOption("--range <FIRST..LAST>")]
    [Description("Only this bucket range (decimal or 0x hex, 0..4294967295), to check a large collection piece by piece.")]
    public string? Range { get; set; }

    [CommandOption("--depth <BITS>")]
    [Description("Merkle depth: the key space is split into 2^BITS buckets (10..24).")]
    [DefaultValue(16)]
    public int Depth { get; set; } = 16;

    [CommandOption("--sample-fraction <FRACTION>")]
    [Description("Fraction of buckets compared in sampling mode, (0, 1].")]
    [DefaultValue(0.01)]
    public double SampleFraction { get; set; } = 0.01;

    [CommandOption("--seed <N>")]
    [Description("Seed of the bucket sample, for a reproducible sampling check.")]
    public int? Seed { get; set; }

    [CommandOption("--show <N>")]
    [Description("Findings listed per store in the report (all are counted).")]
    [DefaultValue(20)]
    public int Show { get; set; } = 20;

    public ConsistencyCheckOptions ToOptions() => new()
    {
        Mode = Mode.ToLowerInvariant() switch
        {
            "full" => ConsistencyCheckMode.Full,
            "bloom" or "memorybounded" or "memory-bounded" => ConsistencyCheckMode.MemoryBounded,
            "sampling" or "sample" => ConsistencyCheckMode.Sampling,
            _ => throw new CliException($"--mode is {SafeText.Quote(Mode)}; use full, bloom or sampling."),
        },
        Deep = Deep,
        MerkleDepth = Depth,
        Range = Range is null ? BucketRange.All : ParseRange(Range),
        Stores = Stores.Length == 0 ? null : Stores,
        SampleFraction = SampleFraction,
        SampleSeed = Seed,
    };

    private static BucketRange ParseRange(string text)
    {
        var parts = text.Split("..", StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !TryParseBucket(parts[0], out var first) || !TryParseBucket(parts[1], out var last) || first > last)
        {
            throw new CliException($"--range is {SafeText.Quote(text)}; write FIRST..LAST with buckets in 0..4294967295 (decimal or 0x hex) and FIRST <= LAST, for example 0..0x7fffffff.");
        }

        return new BucketRange(first, last);
    }

    private static bool TryParseBucket(string text, out uint value) =>
        text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
