using System.Net.Http.Headers;

namespace CrossStoreSync.Errors;

/// <summary>
/// Reads an HTTP <c>Retry-After</c> header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) into the back-off hint that
/// adapters put on <see cref="SyncStoreException.RetryAfter"/>.
/// </summary>
public static class RetryAfterHeader
{
    /// <summary>
    /// The wait the header asks for: its delta, or the time from <paramref name="now"/> to its date; zero for a date in
    /// the past or a negative delta; capped at <paramref name="max"/> so a misbehaving server cannot stall a caller for
    /// hours. Null when there is no header.
    /// </summary>
    /// <param name="header">The response's <c>Retry-After</c> (<see cref="HttpResponseHeaders.RetryAfter"/>), or null.</param>
    /// <param name="now">The current time (from the caller's <see cref="TimeProvider"/>).</param>
    /// <param name="max">The longest wait honoured.</param>
    /// <returns>The hint, or null.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="max"/> is negative.</exception>
    public static TimeSpan? Parse(RetryConditionHeaderValue? header, DateTimeOffset now, TimeSpan max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, TimeSpan.Zero);
        var wait = header?.Delta ?? (header?.Date is { } date ? date - now : null);
        if (wait is not { } value)
        {
            return null;
        }

        return value <= TimeSpan.Zero ? TimeSpan.Zero : value > max ? max : value;
    }
}
