using System.Net;
using System.Text.Json;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;

namespace CrossStoreSync.SurrealDb.Http;

/// <summary>
/// The parsed answer of <c>POST /sql</c>: one item per statement, in 2.x shape (<c>{result,status,time}</c>) or 3.x
/// shape (adds <c>type</c>, and <c>kind</c>/<c>details</c> on errors). See PROTOCOLS.md §3.2. Owns the JSON buffer.
/// </summary>
internal sealed class SurrealResponse : IDisposable
{
    private readonly JsonDocument _document;

    private SurrealResponse(JsonDocument document, int count)
    {
        _document = document;
        Count = count;
    }

    /// <summary>The number of statement items.</summary>
    public int Count { get; }

    /// <summary>Parses a 200 body. Statement errors are not thrown here: see <see cref="ThrowOnError"/>.</summary>
    /// <exception cref="SyncStoreException">The body is not the expected array of statement items.</exception>
    public static SurrealResponse Parse(ReadOnlyMemory<byte> body, RequestContext context)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 512 });
        }
        catch (JsonException ex)
        {
            throw context.Error($"answered with a body that is not JSON: {SafeText.Text(ex.Message)}", isTransient: false, ex);
        }

        var kind = document.RootElement.ValueKind;
        if (kind != JsonValueKind.Array)
        {
            document.Dispose();
            throw context.Error($"answered with a {kind} where an array of statement results was expected.", isTransient: false);
        }

        foreach (var item in document.RootElement.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("status", out var status) || status.ValueKind != JsonValueKind.String)
            {
                document.Dispose();
                throw context.Error("answered with a statement item that has no status.", isTransient: false);
            }
        }

        return new SurrealResponse(document, document.RootElement.GetArrayLength());
    }

    /// <summary>The item of statement <paramref name="index"/>.</summary>
    public StatementResult this[int index] => new(_document.RootElement[index]);

    /// <summary>
    /// Throws for the first failed statement. Inside a transaction, statements after a failure report "not executed";
    /// the error that caused it is the informative one, so it is preferred.
    /// </summary>
    /// <exception cref="SyncStoreException">A statement failed.</exception>
    public void ThrowOnError(RequestContext context)
    {
        StatementResult? consequence = null;
        for (var i = 0; i < Count; i++)
        {
            var item = this[i];
            if (item.IsOk)
            {
                continue;
            }

            if (item.IsNotExecutedConsequence)
            {
                consequence ??= item;
                continue;
            }

            throw item.ToException(context, i);
        }

        if (consequence is { } c)
        {
            throw c.ToException(context, -1);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _document.Dispose();

    /// <summary>Maps a non-200 answer to the library's exception (PROTOCOLS.md §3.1–3.2).</summary>
    /// <param name="status">The HTTP status.</param>
    /// <param name="body">The answer's body (the server's error text is quoted from it, escaped and bounded).</param>
    /// <param name="context">What the request was for.</param>
    /// <param name="retryAfter">The back-off the server asked for (its <c>Retry-After</c> header), kept on transient errors.</param>
    public static SyncStoreException HttpError(HttpStatusCode status, ReadOnlySpan<byte> body, RequestContext context, TimeSpan? retryAfter = null)
    {
        var detail = SafeText.Text(DescribeErrorBody(body), 500);
        var code = (int)status;
        return code switch
        {
            401 => context.Error($"was refused: authentication failed (HTTP 401). Check the credentials in SurrealDbOptions. {detail}", isTransient: false),
            403 => context.Error($"was refused: not allowed (HTTP 403). Check the user's permissions on namespace and database. {detail}", isTransient: false),
            400 => context.Error($"rejected the request (HTTP 400): {detail}", isTransient: false),
            408 or 429 => context.Error($"is busy (HTTP {code}); retrying can help. {detail}", isTransient: true, retryAfter: retryAfter),
            >= 500 => context.Error($"failed (HTTP {code}); retrying can help. {detail}", isTransient: true, retryAfter: retryAfter),
            _ => context.Error($"answered HTTP {code}. {detail}", isTransient: false),
        };
    }

    private static string DescribeErrorBody(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return "(empty body)";
        }

        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                // The server's error body: {code, details, description, information}.
                foreach (var name in (ReadOnlySpan<string>)["information", "description", "details", "message"])
                {
                    if (root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(value.GetString()))
                    {
                        return value.GetString()!;
                    }
                }
            }
        }
        catch (JsonException)
        {
            // Plain-text bodies (proxies, some 401s) are quoted as they are.
        }

        var text = System.Text.Encoding.UTF8.GetString(body[..Math.Min(body.Length, 500)]);
        return text;
    }
}

/// <summary>One statement's item.</summary>
internal readonly struct StatementResult(JsonElement item)
{
    /// <summary>True when <c>status</c> is <c>OK</c>.</summary>
    public bool IsOk => string.Equals(item.GetProperty("status").GetString(), "OK", StringComparison.OrdinalIgnoreCase);

    /// <summary>The statement's result value (an error message when it failed).</summary>
    public JsonElement Result => item.TryGetProperty("result", out var r) ? r : default;

    /// <summary>The 3.x error kind (<c>NotFound</c>, <c>Query</c>, <c>Thrown</c>…), or null (2.x, or success).</summary>
    public string? Kind => item.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;

    /// <summary>The error message of a failed statement.</summary>
    public string Message => Result.ValueKind == JsonValueKind.String ? Result.GetString()! : Result.ToString();

    /// <summary>
    /// True for "the table does not exist": 3.x answers it for reads of a table never defined; 2.x returned an empty
    /// result instead (PROTOCOLS.md §3.4). Reads treat it as an empty table.
    /// </summary>
    public bool IsTableMissing =>
        !IsOk
        && ((Kind == "NotFound" && item.TryGetProperty("details", out var d) && d.ValueKind == JsonValueKind.Object && d.TryGetProperty("kind", out var dk) && dk.ValueKind == JsonValueKind.String && dk.GetString() == "Table")
            || (Message.StartsWith("The table '", StringComparison.Ordinal) && Message.EndsWith("' does not exist", StringComparison.Ordinal)));

    /// <summary>True for the items a failed transaction marks as not executed (they only echo an earlier error).</summary>
    public bool IsNotExecutedConsequence =>
        !IsOk && (Message.Contains("not executed due to a failed transaction", StringComparison.OrdinalIgnoreCase)
            || Message.Contains("cancelled transaction", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// True when retrying can succeed: SurrealDB's optimistic transactions fail on a read/write conflict with a message
    /// saying the transaction "can be retried"; resource and timeout errors are worth a retry too.
    /// </summary>
    public bool IsTransient
    {
        get
        {
            var m = Message;
            return m.Contains("can be retried", StringComparison.OrdinalIgnoreCase)
                || m.Contains("conflict", StringComparison.OrdinalIgnoreCase)
                || m.Contains("timed out", StringComparison.OrdinalIgnoreCase)
                || m.Contains("Resource busy", StringComparison.OrdinalIgnoreCase);
        }
    }

    /// <summary>The exception for this failed statement.</summary>
    public SyncStoreException ToException(RequestContext context, int index) =>
        context.Error(
            $"failed in statement {(index >= 0 ? (index + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : "?")}{(Kind is null ? string.Empty : $" ({SafeText.Text(Kind, 64)})")}: {SafeText.Text(Message)}",
            IsTransient);
}

/// <summary>What a request was for, so errors name the store, operation and key.</summary>
internal readonly record struct RequestContext(string Store, string Operation, EntityKey? Key)
{
    public SyncStoreException Error(string message, bool isTransient, Exception? inner = null, TimeSpan? retryAfter = null) =>
        new($"SurrealDB store {SafeText.Quote(Store)} {Operation}{(Key is { } k ? $" of {SafeText.Quote(k)}" : string.Empty)} {message}", isTransient, Store, Key, Operation, inner) { RetryAfter = retryAfter };
}
