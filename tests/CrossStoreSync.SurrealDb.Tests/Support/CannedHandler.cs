using System.Net;
using System.Text;

namespace CrossStoreSync.SurrealDb.Tests.Support;

/// <summary>An HTTP handler that answers from a script and records what was sent: for recorded 2.x/3.x answers and faults.</summary>
public sealed class CannedHandler : HttpMessageHandler
{
    private readonly Func<HttpRequestMessage, string, int, HttpResponseMessage> _answer;
    private readonly List<(string Path, string Body, HttpRequestMessage Request)> _requests = [];

    public CannedHandler(Func<HttpRequestMessage, string, int, HttpResponseMessage> answer) => _answer = answer;

    public IReadOnlyList<(string Path, string Body, HttpRequestMessage Request)> Requests
    {
        get
        {
            lock (_requests)
            {
                return _requests.ToArray();
            }
        }
    }

    public IEnumerable<string> SqlBodies => Requests.Where(r => r.Path == "/sql").Select(r => r.Body);

    public static HttpResponseMessage Json(string json, HttpStatusCode status = HttpStatusCode.OK) =>
        new(status) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    public static HttpResponseMessage Text(string text, HttpStatusCode status = HttpStatusCode.OK) =>
        new(status) { Content = new StringContent(text, Encoding.UTF8, "text/plain") };

    /// <summary>A handler for a server of the given version whose /sql answers come from <paramref name="sql"/>.</summary>
    public static CannedHandler Server(string version, Func<string, int, HttpResponseMessage> sql) =>
        new((request, body, n) => request.RequestUri!.AbsolutePath == "/version" ? Text(version) : sql(body, n));

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? string.Empty : await request.Content.ReadAsStringAsync(cancellationToken);
        int index;
        lock (_requests)
        {
            _requests.Add((request.RequestUri!.AbsolutePath, body, request));
            index = _requests.Count(r => r.Path == request.RequestUri.AbsolutePath) - 1;
        }

        return _answer(request, body, index);
    }
}
