using CrossStoreSync.Errors;

using System.Globalization;

namespace CrossStoreSync.SurrealDb;

/// <summary>Options of a <see cref="Stores.SurrealDbDocumentStore"/>. Validated when the store is created (at start-up under DI).</summary>
/// <remarks>Credentials: set <see cref="Username"/> and <see cref="Password"/> (HTTP Basic), or <see cref="BearerToken"/>, or neither (a server started unauthenticated).</remarks>
public sealed class SurrealDbOptions
{
    /// <summary>The server's base address, for example <c>http://127.0.0.1:8000</c>. <value>Required; no default.</value></summary>
    public Uri? Endpoint { get; set; }

    /// <summary>The namespace (<c>Surreal-NS</c> header). <value>Default <c>crossstoresync</c>.</value></summary>
    public string Namespace { get; set; } = "crossstoresync";

    /// <summary>The database (<c>Surreal-DB</c> header). <value>Default <c>crossstoresync</c>.</value></summary>
    public string Database { get; set; } = "crossstoresync";

    /// <summary>User for HTTP Basic authentication, or null. <value>Default null.</value></summary>
    public string? Username { get; set; }

    /// <summary>Password for HTTP Basic authentication. <value>Default null.</value></summary>
    public string? Password { get; set; }

    /// <summary>
    /// The level Basic credentials are checked at: null for a root user, or a namespace (<c>Surreal-Auth-NS</c>) for a
    /// namespace or database user. <value>Default null.</value>
    /// </summary>
    public string? AuthNamespace { get; set; }

    /// <summary>The database of a database-level user (<c>Surreal-Auth-DB</c>); needs <see cref="AuthNamespace"/>. <value>Default null.</value></summary>
    public string? AuthDatabase { get; set; }

    /// <summary>A JWT sent as <c>Authorization: Bearer</c> instead of Basic credentials, or null. <value>Default null.</value></summary>
    public string? BearerToken { get; set; }

    /// <summary>The store's name (its cursor and dead letters are keyed by it). <value>Default <c>surrealdb</c>.</value></summary>
    public string StoreName { get; set; } = "surrealdb";

    /// <summary>Time allowed for one HTTP request before it counts as a transient failure. <value>Default 30 seconds.</value></summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a transient failure (5xx, connection refused, timeout, transaction conflict) is retried inside the store before it is reported. <value>Default 3.</value></summary>
    public int TransientRetryAttempts { get; set; } = 3;

    /// <summary>The delay before the first retry, doubled for each next one (with jitter). <value>Default 100 ms.</value></summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The longest <c>Retry-After</c> (of a 408, 429 or 5xx answer) honoured: the store's own retries wait that long, and
    /// the hint travels on the exception (<see cref="Errors.SyncStoreException.RetryAfter"/>) to the engine's dispatcher.
    /// A longer one is cut to it. <value>Default 30 seconds.</value>
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The most changes sent in one multi-statement transaction; larger batches are split. <value>Default 500.</value></summary>
    public int MaxChangesPerRequest { get; set; } = 500;

    /// <summary>Records read per request by digest scans and id look-ups. <value>Default 1000.</value></summary>
    public int ReadPageSize { get; set; } = 1000;

    /// <summary>
    /// The server's major version (2 or 3), or null to ask the server (<c>GET /version</c>) when the store starts.
    /// It decides the record-id function (<c>type::thing</c> in 2.x, <c>type::record</c> in 3.x). <value>Default null.</value>
    /// </summary>
    public int? ServerMajorVersion { get; set; }

    /// <summary>Throws when a value is out of range or inconsistent; the message quotes the bad value.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (Endpoint is null || !Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"SurrealDbOptions.Endpoint is {SafeText.Quote(Endpoint?.ToString())}; it must be an absolute http:// or https:// address such as http://127.0.0.1:8000.", nameof(Endpoint));
        }

        RequireName(Namespace, nameof(Namespace));
        RequireName(Database, nameof(Database));
        if (string.IsNullOrWhiteSpace(StoreName))
        {
            throw new ArgumentException($"SurrealDbOptions.StoreName is {SafeText.Quote(StoreName)}; it must not be empty.", nameof(StoreName));
        }

        if (BearerToken is not null && (Username is not null || Password is not null))
        {
            throw new ArgumentException("SurrealDbOptions sets both BearerToken and Username/Password; choose one kind of credentials.", nameof(BearerToken));
        }

        if (BearerToken is not null && string.IsNullOrWhiteSpace(BearerToken))
        {
            throw new ArgumentException("SurrealDbOptions.BearerToken is empty; set a token or leave it null.", nameof(BearerToken));
        }

        if ((Username is null) != (Password is null) || (Username is not null && Username.Length == 0))
        {
            throw new ArgumentException($"SurrealDbOptions.Username is {SafeText.Quote(Username)} and Password is {(Password is null ? "not set" : "set")}; Basic authentication needs both.", nameof(Username));
        }

        if (AuthDatabase is not null && AuthNamespace is null)
        {
            throw new ArgumentException($"SurrealDbOptions.AuthDatabase is {SafeText.Quote(AuthDatabase)} but AuthNamespace is not set; a database user needs both.", nameof(AuthDatabase));
        }

        RequirePositive(RequestTimeout, nameof(RequestTimeout));
        RequirePositive(RetryBaseDelay, nameof(RetryBaseDelay));
        RequirePositive(MaxRetryAfter, nameof(MaxRetryAfter));
        RequireRange(TransientRetryAttempts, 0, 100, nameof(TransientRetryAttempts));
        RequireRange(MaxChangesPerRequest, 1, 10_000, nameof(MaxChangesPerRequest));
        RequireRange(ReadPageSize, 1, 100_000, nameof(ReadPageSize));
        if (ServerMajorVersion is { } major && major is not (2 or 3))
        {
            throw new ArgumentException($"SurrealDbOptions.ServerMajorVersion is {major}; only 2 and 3 are supported (null asks the server).", nameof(ServerMajorVersion));
        }
    }

    private static void RequireName(string value, string name)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 256 || value.Any(char.IsControl))
        {
            throw new ArgumentException($"SurrealDbOptions.{name} is {SafeText.Quote(value)}; it must be a non-empty name without control characters, at most 256 characters.", name);
        }
    }

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"SurrealDbOptions.{name} is {value}; it must be positive.", name);
        }
    }

    private static void RequireRange(int value, int min, int max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"SurrealDbOptions.{name} is {value}; it must be in {min}..{max}."), name);
        }
    }
}
