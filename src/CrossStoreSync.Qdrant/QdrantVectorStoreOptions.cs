using System.Globalization;
using CrossStoreSync.Model;

namespace CrossStoreSync.Qdrant;

/// <summary>Options of a <see cref="QdrantVectorStore"/>. Validated when the store is created (and at host start-up through DI).</summary>
public sealed class QdrantVectorStoreOptions
{
    /// <summary>The store's name; its cursor and dead letters are keyed by it. <value>Default <c>qdrant</c>.</value></summary>
    public string StoreName { get; set; } = "qdrant";

    /// <summary>The server's REST address, for example <c>http://localhost:6333</c>. <value>Required.</value></summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>The API key sent as the <c>api-key</c> header, or null for a server without authentication. <value>Default null.</value></summary>
    public string? ApiKey { get; set; }

    /// <summary>How long one HTTP attempt may take before it counts as a transient failure. <value>Default 30 seconds.</value></summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a transiently failed request (429, 503, timeout, connection refused) is retried inside one store call before the engine's own retry takes over. <value>Default 3.</value></summary>
    public int MaxRetryAttempts { get; set; } = 3;

    /// <summary>The first backoff delay of those retries; it doubles per attempt, with jitter. <value>Default 200 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest delay honoured from a <c>Retry-After</c> header; longer waits are cut to this and the engine keeps retrying after it. <value>Default 30 seconds.</value></summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Points per upsert, retrieve and scroll request. <value>Default 256.</value></summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Prefix of Qdrant collection names: entity collection <c>items</c> lives in Qdrant collection <c>{prefix}items</c>. <value>Default empty.</value></summary>
    public string CollectionPrefix { get; set; } = string.Empty;

    /// <summary>The named vector used in collections without an entry in <see cref="Collections"/>. <value>Default <c>embedding</c>.</value></summary>
    public string DefaultVectorName { get; set; } = "embedding";

    /// <summary>Per-collection settings, keyed by entity collection name. Dimension and distance come from the engine's collection definitions unless set here. <value>Default empty.</value></summary>
    public IDictionary<string, QdrantCollectionOptions> Collections { get; } = new Dictionary<string, QdrantCollectionOptions>(StringComparer.Ordinal);

    /// <summary>Throws when an option is out of range, quoting the bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(StoreName))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.StoreName is '{StoreName}'; it must not be empty.", nameof(StoreName));
        }

        if (BaseAddress is null || !BaseAddress.IsAbsoluteUri || (BaseAddress.Scheme != Uri.UriSchemeHttp && BaseAddress.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.BaseAddress is '{BaseAddress}'; it must be an absolute http or https URL such as http://localhost:6333.", nameof(BaseAddress));
        }

        if (ApiKey is not null && (ApiKey.Length == 0 || ApiKey.Any(char.IsControl)))
        {
            throw new ArgumentException("QdrantVectorStoreOptions.ApiKey is empty or contains control characters; set null for no key.", nameof(ApiKey));
        }

        Positive(RequestTimeout, nameof(RequestTimeout));
        Positive(RetryBaseDelay, nameof(RetryBaseDelay));
        Positive(MaxRetryAfter, nameof(MaxRetryAfter));
        if (MaxRetryAttempts is < 0 or > 100)
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.MaxRetryAttempts is {MaxRetryAttempts}; it must be in 0..100.", nameof(MaxRetryAttempts));
        }

        if (BatchSize is < 1 or > 10_000)
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.BatchSize is {BatchSize}; it must be in 1..10000.", nameof(BatchSize));
        }

        // Qdrant collection names end up in URL paths; the same identifier rule as entity collections keeps them safe.
        if (CollectionPrefix.Length > 0 && !IsIdentifierTail(CollectionPrefix))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.CollectionPrefix is '{CollectionPrefix}'; use letters, digits, '_' and '-' only.", nameof(CollectionPrefix));
        }

        ValidateVectorName(DefaultVectorName, nameof(DefaultVectorName));
        foreach (var (name, collection) in Collections)
        {
            EntityKey.ValidateCollection(name, nameof(Collections));
            ArgumentNullException.ThrowIfNull(collection, nameof(Collections));
            if (collection.VectorName is not null)
            {
                ValidateVectorName(collection.VectorName, $"Collections[{name}].VectorName");
            }

            if (collection.Dimension is < 1 or > 65_536)
            {
                throw new ArgumentException($"QdrantVectorStoreOptions.Collections[{name}].Dimension is {collection.Dimension?.ToString(CultureInfo.InvariantCulture)}; it must be in 1..65536.", nameof(Collections));
            }
        }
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.{name} is {value}; it must be positive.", name);
        }
    }

    private static void ValidateVectorName(string? name, string option)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !IsIdentifierTail(name))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.{option} is '{name}'; a vector name must be 1..64 letters, digits, '_' or '-'.", option);
        }
    }

    private static bool IsIdentifierTail(string value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_' && c != '-')
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>Settings of one entity collection in Qdrant.</summary>
public sealed class QdrantCollectionOptions
{
    /// <summary>The named vector holding the entity's embedding, or null for <see cref="QdrantVectorStoreOptions.DefaultVectorName"/>. <value>Default null.</value></summary>
    public string? VectorName { get; set; }

    /// <summary>The vector size; when set it must equal the engine's collection definition. <value>Default null (from the definition).</value></summary>
    public int? Dimension { get; set; }

    /// <summary>The distance; when set it must equal the engine's collection definition. <value>Default null (from the definition).</value></summary>
    public Stores.VectorDistance? Distance { get; set; }
}
