using System.Globalization;

namespace CrossStoreSync.SurrealDb.ChangeFeed;

/// <summary>Options of <see cref="SurrealDbChangeFeed"/>. Validated when the feed is created.</summary>
public sealed class SurrealDbChangeFeedOptions
{
    /// <summary>The tables (collections) to follow, or empty for every collection configured in <c>AddCrossStoreSync</c>. <value>Default empty.</value></summary>
    public IList<string> Collections { get; } = [];

    /// <summary>How often the feed is read when the previous read found nothing. <value>Default 1 second.</value></summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The most change sets read per table per request. <value>Default 500.</value></summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>
    /// How long SurrealDB keeps changes (<c>CHANGEFEED</c> expiry), set on each followed table at start. A feed that is
    /// stopped for longer misses changes; run a consistency check after such an outage. <value>Default 1 day.</value>
    /// </summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Throws when a value is out of range; the message quotes the bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"SurrealDbChangeFeedOptions.PollInterval is {PollInterval}; it must be positive.", nameof(PollInterval));
        }

        if (BatchSize is < 1 or > 100_000)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"SurrealDbChangeFeedOptions.BatchSize is {BatchSize}; it must be in 1..100000."), nameof(BatchSize));
        }

        if (Retention < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException($"SurrealDbChangeFeedOptions.Retention is {Retention}; it must be at least one second.", nameof(Retention));
        }

        foreach (var collection in Collections)
        {
            Model.EntityKey.ValidateCollection(collection, nameof(Collections));
        }
    }
}
