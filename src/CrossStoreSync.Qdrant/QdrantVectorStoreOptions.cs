using CrossStoreSync.Errors;

using System.Globalization;
using CrossStoreSync.Model;

namespace CrossStoreSync.Qdrant;

/// <summary>Options of a <see cref="QdrantVectorStore"/>. Validated when the store is created (and at host start-up through DI).</summary>
public sealed class QdrantVectorStoreOptions
{
    /// <summary>The store's name; its cursor and dead letters are keyed by it. <value>Default <c>qdrant</c>.</value></summary>
    public string StoreName { get; set; } = "qdrant";

    /// <summary>
    /// The server's gRPC address, for example <c>http://localhost:6334</c> (Qdrant's gRPC port; 6333 is REST), or
    /// <c>https://...:6334</c> for TLS. Required when the store creates its own client; must stay null when the store
    /// is given a <c>QdrantClient</c>, whose own settings then apply. <value>Default null.</value>
    /// </summary>
    public Uri? Address { get; set; }

    /// <summary>The API key sent as <c>api-key</c> metadata, or null for a server without authentication. Only for a client the store creates. <value>Default null.</value></summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// The SHA-256 thumbprint (hex, optionally with <c>:</c> or <c>-</c> separators) of the server's TLS certificate,
    /// to trust a self-signed certificate; other certificates are then refused. Only with an <c>https</c>
    /// <see cref="Address"/>, only for a client the store creates. <value>Default null (the system's trust store decides).</value>
    /// </summary>
    public string? CertificateThumbprint { get; set; }

    /// <summary>How long one gRPC call may take before it counts as a transient failure. <value>Default 30 seconds.</value></summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a transiently failed call (Unavailable, DeadlineExceeded, ResourceExhausted, Aborted, a dropped stream, a timeout) is retried inside one store call before the engine's own retry takes over. <value>Default 3.</value></summary>
    public int MaxRetryAttempts { get; set; } = 3;

    /// <summary>The first backoff delay of those retries; it doubles per attempt, with jitter. <value>Default 200 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest delay honoured from the <c>retry-after</c> metadata of a ResourceExhausted answer; longer waits are cut to this and the engine keeps retrying after it. <value>Default 30 seconds.</value></summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Points per upsert, retrieve and scroll call. <value>Default 256.</value></summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Prefix of Qdrant collection names: entity collection <c>items</c> lives in Qdrant collection <c>{prefix}items</c>. <value>Default empty.</value></summary>
    public string CollectionPrefix { get; set; } = string.Empty;

    /// <summary>The named vector used in collections without an entry in <see cref="Collections"/>. <value>Default <c>embedding</c>.</value></summary>
    public string DefaultVectorName { get; set; } = "embedding";

    /// <summary>Per-collection settings, keyed by entity collection name. Dimension and distance come from the engine's collection definitions unless set here. <value>Default empty.</value></summary>
    public IDictionary<string, QdrantCollectionOptions> Collections { get; } = new Dictionary<string, QdrantCollectionOptions>(StringComparer.Ordinal);

    /// <summary>Throws when an option is out of range, quoting the bad value, for a store that creates its own client from <see cref="Address"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate() => Validate(clientGiven: false);

    /// <summary>Throws when an option is out of range, quoting the bad value.</summary>
    /// <param name="clientGiven">True when the store is given a <c>QdrantClient</c>: then the connection options must stay unset, so they cannot silently go unused.</param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate(bool clientGiven)
    {
        if (string.IsNullOrWhiteSpace(StoreName))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.StoreName is {SafeText.Quote(StoreName)}; it must not be empty.", nameof(StoreName));
        }

        if (clientGiven)
        {
            if (Address is not null || ApiKey is not null || CertificateThumbprint is not null)
            {
                throw new ArgumentException(
                    $"QdrantVectorStoreOptions.Address ({SafeText.Quote(Address?.ToString())}), ApiKey or CertificateThumbprint is set, but store {SafeText.Quote(StoreName)} was given a QdrantClient; configure the connection on that client and leave these null.",
                    nameof(Address));
            }
        }
        else
        {
            ValidateConnection();
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

        // Qdrant collection names also name REST paths and snapshot files; the identifier rule keeps them safe everywhere.
        if (CollectionPrefix.Length > 0 && !IsIdentifierTail(CollectionPrefix))
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.CollectionPrefix is {SafeText.Quote(CollectionPrefix)}; use letters, digits, '_' and '-' only.", nameof(CollectionPrefix));
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

    private void ValidateConnection()
    {
        if (Address is null || !Address.IsAbsoluteUri || (Address.Scheme != Uri.UriSchemeHttp && Address.Scheme != Uri.UriSchemeHttps) || Address.PathAndQuery != "/")
        {
            throw new ArgumentException($"QdrantVectorStoreOptions.Address is {SafeText.Quote(Address?.ToString())}; it must be an absolute http or https URL of Qdrant's gRPC port without a path, such as http://localhost:6334.", nameof(Address));
        }

        if (ApiKey is not null && (ApiKey.Length == 0 || ApiKey.Any(char.IsControl)))
        {
            throw new ArgumentException("QdrantVectorStoreOptions.ApiKey is empty or contains control characters; set null for no key.", nameof(ApiKey));
        }

        if (CertificateThumbprint is not null)
        {
            if (Address.Scheme != Uri.UriSchemeHttps)
            {
                throw new ArgumentException($"QdrantVectorStoreOptions.CertificateThumbprint is set but Address is {SafeText.Quote(Address?.ToString())}; a certificate thumbprint needs an https address.", nameof(CertificateThumbprint));
            }

            var hex = CertificateThumbprint.Replace(":", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal);
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                throw new ArgumentException($"QdrantVectorStoreOptions.CertificateThumbprint is {SafeText.Quote(CertificateThumbprint)}; it must be the certificate's SHA-256 thumbprint, 64 hex digits (':' or '-' separators allowed).", nameof(CertificateThumbprint));
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
            throw new ArgumentException($"QdrantVectorStoreOptions.{option} is {SafeText.Quote(name)}; a vector name must be 1..64 letters, digits, '_' or '-'.", option);
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
