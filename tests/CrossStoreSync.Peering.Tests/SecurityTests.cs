using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using static CrossStoreSync.Peering.Tests.Notes;

namespace CrossStoreSync.Peering.Tests;

/// <summary>
/// The protocol under attack: a man in the middle between node 2 and node 1 alters, replays and reorders what node 1
/// sends; strangers and replayed handshakes knock on node 1's door. Nothing may be applied and no cursor may move.
/// </summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(3);
    private TamperingProxy? _proxy;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
        }

        await _cluster.DisposeAsync();
    }

    /// <summary>Node 1 holds a few states; node 2 reaches it only through the man in the middle.</summary>
    private async Task<(TestNode Server, TestNode Puller)> StartBehindProxyAsync(Tamper mode)
    {
        var server = await _cluster.StartAsync(1);
        await server.Manager.WriteBatchAsync([Note("x", "one"), Note("y", "two")]);
        _proxy = await TamperingProxy.StartAsync(new Uri($"http://127.0.0.1:{_cluster[1].Port}"), TestCluster.FreePort());
        _proxy.Mode = mode;
        var proxyUrl = _proxy.Url.ToString();
        _cluster.UrlOf = (from, to) => to.NodeId == 1 ? proxyUrl : $"http://127.0.0.1:{to.Port}";
        var puller = await _cluster.StartAsync(2);
        return (server, puller);
    }

    private static async Task<PeerStatus> WaitForErrorAsync(TestNode node, int peer, PeerErrorCode code)
    {
        using var timeout = new CancellationTokenSource(TestCluster.Wait);
        while (node.StatusOf(peer).LastErrorCode != code)
        {
            // The pull loop retries with backoff; SyncNow wakes it (and fails the same way), until its status says so.
            await Assert.ThrowsAnyAsync<Exception>(() => node.Peering.SyncNowAsync(peer, timeout.Token).WaitAsync(TimeSpan.FromSeconds(5), timeout.Token));
        }

        return node.StatusOf(peer);
    }

    [Theory]
    [InlineData(Tamper.FlipBodyBit, PeerErrorCode.BadBodyHash)]
    [InlineData(Tamper.FlipHeaderBit, PeerErrorCode.BadSignature)]
    [InlineData(Tamper.SwapFrames, PeerErrorCode.OutOfOrder)]
    public async Task An_altered_or_reordered_answer_is_refused_with_nothing_applied(Tamper mode, PeerErrorCode expected)
    {
        var (_, puller) = await StartBehindProxyAsync(mode);

        var status = await WaitForErrorAsync(puller, 1, expected);
        Assert.Equal(0, status.Cursor);
        Assert.Equal(0, await puller.HeadAsync());
        Assert.Null(await puller.StateAsync("x"));
        Assert.True(_proxy!.Tampered > 0);

        // The same peer through an honest path: everything arrives.
        _proxy.Mode = Tamper.None;
        await puller.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        Assert.Equal(2, await puller.HeadAsync());
    }

    [Fact]
    public async Task A_replayed_answer_is_refused_and_the_cursor_stays()
    {
        var (server, puller) = await StartBehindProxyAsync(Tamper.ReplayFirstChunkAnswer);
        await puller.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait); // the first answer passes and is recorded
        Assert.Equal(2, await puller.HeadAsync());
        var cursor = puller.StatusOf(1).Cursor;

        await server.Manager.WriteAsync(Note("z", "three"));
        var status = await WaitForErrorAsync(puller, 1, PeerErrorCode.Replayed);
        Assert.Equal(cursor, status.Cursor);
        Assert.Equal(2, await puller.HeadAsync());
        Assert.Null(await puller.StateAsync("z"));
    }

    [Fact]
    public async Task A_replayed_handshake_or_request_is_refused()
    {
        var (_, puller) = await StartBehindProxyAsync(Tamper.None);
        await puller.Peering.SyncNowAsync(1).WaitAsync(TestCluster.Wait);
        using var http = new HttpClient();
        var target = new Uri($"http://127.0.0.1:{_cluster[1].Port}");

        var confirmation = _proxy!.Requests.First(r => r.Path.EndsWith("/v1/session", StringComparison.Ordinal));
        using (var replayed = await http.PostAsync(new Uri(target, confirmation.Path), new ByteArrayContent(confirmation.Body)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
            Assert.Contains("handshake_failed", await replayed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var pull = _proxy.Requests.First(r => r.Path.EndsWith("/v1/changes", StringComparison.Ordinal));
        using var again = new HttpRequestMessage(HttpMethod.Post, new Uri(target, pull.Path)) { Content = new ByteArrayContent(pull.Body) };
        foreach (var (name, value) in pull.Headers)
        {
            again.Headers.Add(name, value);
        }

        using var answer = await http.SendAsync(again);
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Contains("not after", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_key_is_refused_with_401()
    {
        await _cluster.StartAsync(1);
        using var http = new HttpClient();
        var (_, stranger) = PeerKeys.Generate();
        var hello = new
        {
            protocol = "css-peer/1",
            node = 2,
            key = stranger,
            nonce = Convert.ToBase64String(new byte[32]),
            time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        using var answer = await http.PostAsJsonAsync(new Uri($"http://127.0.0.1:{_cluster[1].Port}/crossstoresync/peering/v1/hello"), hello);
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Contains("unknown_key", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // A node configured with a key its peer does not know fails the same way, and says so in its status.
        var impostor = await _cluster.StartAsync(3, p => p.SigningKey = PeerKeys.Generate().PrivateKey);
        var status = await WaitForErrorAsync(impostor, 1, PeerErrorCode.UnknownKey);
        Assert.Contains("401", status.LastError, StringComparison.Ordinal);
        Assert.Equal(0, await impostor.HeadAsync());
    }

    [Fact]
    public async Task Text_sent_by_a_stranger_is_escaped_in_the_refusal_so_it_cannot_forge_log_lines()
    {
        await _cluster.StartAsync(1);
        using var http = new HttpClient();
        var forged = "css-peer/9\n2030-01-01 ERROR forged\u001b[31m";
        var hello = new { protocol = forged, node = 2, key = PeerKeys.Generate().PublicKey, nonce = Convert.ToBase64String(new byte[32]), time = 0L };
        using var answer = await http.PostAsJsonAsync(new Uri($"http://127.0.0.1:{_cluster[1].Port}/crossstoresync/peering/v1/hello"), hello);
        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        var body = await answer.Content.ReadFromJsonAsync<JsonElement>();
        var message = body.GetProperty("message").GetString()!;
        Assert.Contains(@"'css-peer/9\n2030-01-01 ERROR forged\e[31m'", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain('\u001b', message);
    }

    [Fact]
    public async Task A_request_without_a_session_is_refused()
    {
        await _cluster.StartAsync(1);
        using var http = new HttpClient();
        using var answer = await http.PostAsync(new Uri($"http://127.0.0.1:{_cluster[1].Port}/crossstoresync/peering/v1/changes"), new StringContent("""{"after":0}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
    }
}
