using CrossStoreSync.Errors;

namespace CrossStoreSync.Neo4j;

/// <summary>Options of a <see cref="Neo4jGraphStore"/>. Validated when the store is created (and at host start-up through DI).</summary>
public sealed class Neo4jGraphStoreOptions
{
    /// <summary>The store's name; its cursor and dead letters are keyed by it. <value>Default <c>neo4j</c>.</value></summary>
    public string StoreName { get; set; } = "neo4j";

    /// <summary>The server's HTTP address, for example <c>http://localhost:7474</c>. <value>Required.</value></summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>The database. <value>Default <c>neo4j</c>.</value></summary>
    public string Database { get; set; } = "neo4j";

    /// <summary>User for Basic authentication, with <see cref="Password"/>. <value>Default null.</value></summary>
    public string? User { get; set; }

    /// <summary>Password for Basic authentication. <value>Default null.</value></summary>
    public string? Password { get; set; }

    /// <summary>A bearer token (SSO), used instead of <see cref="User"/>/<see cref="Password"/>. <value>Default null.</value></summary>
    public string? BearerToken { get; set; }

    /// <summary>How long one HTTP attempt may take before it counts as a transient failure. <value>Default 30 seconds.</value></summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a transiently failed request (<c>Neo.TransientError.*</c>, 503, timeout, connection refused) is retried inside one store call before the engine's own retry takes over. <value>Default 3.</value></summary>
    public int MaxRetryAttempts { get; set; } = 3;

    /// <summary>The first backoff delay of those retries; it doubles per attempt, with jitter. <value>Default 200 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The longest <c>Retry-After</c> (of a 429 or 503 answer) honoured: the store's own retries wait that long, and the
    /// hint travels on the exception (<see cref="Errors.SyncStoreException.RetryAfter"/>) to the engine's dispatcher. A
    /// longer one is cut to it. <value>Default 30 seconds.</value>
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Entities per <c>UNWIND $rows</c> write and nodes per digest page. <value>Default 500.</value></summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>Throws when an option is out of range, quoting the bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(StoreName))
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.StoreName is {SafeText.Quote(StoreName)}; it must not be empty.", nameof(StoreName));
        }

        if (BaseAddress is null || !BaseAddress.IsAbsoluteUri || (BaseAddress.Scheme != Uri.UriSchemeHttp && BaseAddress.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.BaseAddress is {SafeText.Quote(BaseAddress?.ToString())}; it must be an absolute http or https URL such as http://localhost:7474.", nameof(BaseAddress));
        }

        // Database names go into the URL path: Neo4j allows letters, digits, dots and dashes (3..63 characters).
        if (string.IsNullOrEmpty(Database) || Database.Length > 63 || !char.IsAsciiLetter(Database[0]) || Database.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '.' && c != '-' && c != '_'))
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.Database is {SafeText.Quote(Database)}; use a Neo4j database name (a letter, then letters, digits, '.', '-' or '_').", nameof(Database));
        }

        if (BearerToken is not null && (User is not null || Password is not null))
        {
            throw new ArgumentException("Neo4jGraphStoreOptions: set either BearerToken or User/Password, not both.", nameof(BearerToken));
        }

        if ((User is null) != (Password is null))
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions: User is {SafeText.Quote(User)} but Password is {(Password is null ? "not set" : "set")}; Basic authentication needs both.", nameof(User));
        }

        if (User is not null && User.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.User is {SafeText.Quote(User)}; Basic authentication does not allow ':' in the user name.", nameof(User));
        }

        Positive(RequestTimeout, nameof(RequestTimeout));
        Positive(RetryBaseDelay, nameof(RetryBaseDelay));
        Positive(MaxRetryAfter, nameof(MaxRetryAfter));
        if (MaxRetryAttempts is < 0 or > 100)
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.MaxRetryAttempts is {MaxRetryAttempts}; it must be in 0..100.", nameof(MaxRetryAttempts));
        }

        if (BatchSize is < 1 or > 10_000)
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.BatchSize is {BatchSize}; it must be in 1..10000.", nameof(BatchSize));
        }
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Neo4jGraphStoreOptions.{name} is {value}; it must be positive.", name);
        }
    }
}
