using System.Net;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.SurrealDb.Stores;
using CrossStoreSync.SurrealDb.Tests.Support;

namespace CrossStoreSync.SurrealDb.Tests;

/// <summary>
/// The store against recorded server answers (PROTOCOLS.md §3): 2.x shapes, which the embedded 3.x engine cannot
/// produce, and every error path: statement errors inside a 200, 400 parse errors, 401/403, 5xx, connection failures,
/// timeouts and transaction conflicts.
/// </summary>
public sealed class RecordedResponseTests
{
    private const string Ok = """[{"result":null,"status":"OK","time":"12.5µs"}]""";

    private static readonly EntityKey Key = new("items", "e1-abc");

    private static SurrealDbDocumentStore Store(CannedHandler handler, Action<SurrealDbOptions>? configure = null)
    {
        var options = new SurrealDbOptions
        {
            Endpoint = new Uri("http://surreal.test:8000"),
            Namespace = "ns",
            Database = "db",
            StoreName = "surreal-test",
            TransientRetryAttempts = 2,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        };
        configure?.Invoke(options);
        return new SurrealDbDocumentStore(options, new HttpClient(handler));
    }

    private static EntityChange Change(string id = "e1-abc") =>
        EntityChange.Upsert(SyncEntity.FromJson(new EntityKey("items", id), """{"text":"hi"}"""), new HlcTimestamp(1_700_000_000_000, 0, 1));

    /// <summary>A row as SurrealDB 2.x renders it: the key escaped in ⟨…⟩, and no <c>type</c> field on the item.</summary>
    private static string Row2x(string renderedId, bool withKey)
    {
        var change = Change();
        var hash = change.ContentHash.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);
        var key = withKey ? "\"k\":\"e1-abc\"," : string.Empty;
        return "[{\"result\":[{\"_sync\":{\"bucket\":7,\"deleted\":false,\"doc\":\"{\\\"text\\\":\\\"hi\\\"}\",\"hash\":\"" + hash +
            "\",\"pos\":\"00000007e1-abc\",\"version\":" + change.Version.Value + "},\"data\":{\"text\":\"hi\"},\"edges\":[],\"id\":\"" + renderedId + "\"," + key +
            "\"vector\":[0.5,1]}],\"status\":\"OK\",\"time\":\"1.2ms\"}]";
    }

    [Fact]
    public async Task A_2x_server_gets_type_thing_and_its_angle_bracket_record_ids_are_parsed()
    {
        var handler = CannedHandler.Server("surrealdb-2.6.5", (_, _) => CannedHandler.Json(Row2x("items:⟨e1-abc⟩", withKey: false)));
        var store = Store(handler);

        var read = await store.ReadAsync(Key, CancellationToken.None);

        Assert.NotNull(read);
        Assert.Equal(Key, read.Entity.Key);
        Assert.Equal("""{"text":"hi"}""", read.Entity.DocumentText);
        Assert.Equal(new float[] { 0.5f, 1f }, read.Entity.Vector.ToArray());
        Assert.Equal(Change().Version, read.Version);
        Assert.Equal(2, store.ServerMajorVersion);
        var sql = Assert.Single(handler.SqlBodies);
        Assert.Contains("type::thing(\"items\",\"e1-abc\")", sql, StringComparison.Ordinal);
        Assert.DoesNotContain("type::record", sql, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_3x_server_gets_type_record()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json("""[{"result":[],"status":"OK","time":"3µs","type":null}]"""));
        var store = Store(handler);

        Assert.Null(await store.ReadAsync(Key, CancellationToken.None));
        Assert.Equal(3, store.ServerMajorVersion);
        Assert.Contains("type::record(\"items\",\"e1-abc\")", Assert.Single(handler.SqlBodies), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"result":"The table 'items' does not exist","status":"ERR","time":"20µs"}]""")]
    [InlineData("""[{"details":{"details":{"name":"items"},"kind":"Table"},"kind":"NotFound","result":"The table 'items' does not exist","status":"ERR","time":"205µs","type":null}]""")]
    [InlineData("""[{"result":[],"status":"OK","time":"20µs"}]""")]
    public async Task Reads_of_a_table_never_defined_are_empty_in_either_version(string answer)
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json(answer));
        var store = Store(handler);

        Assert.Null(await store.ReadAsync(Key, CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("items", CancellationToken.None));
        Assert.Empty(await store.ScanAsync("items", null, 10, CancellationToken.None));
        Assert.Empty(await store.ReadDigestsAsync("items", ["a"], CancellationToken.None));
    }

    [Fact]
    public async Task A_2x_statement_error_inside_a_200_is_a_permanent_error_naming_store_operation_and_key()
    {
        var handler = CannedHandler.Server("surrealdb-2.6.5", (sql, _) => sql.StartsWith("DEFINE", StringComparison.Ordinal)
            ? CannedHandler.Json("""[{"result":null,"status":"OK","time":"1ms"},{"result":null,"status":"OK","time":"1ms"},{"result":null,"status":"OK","time":"1ms"}]""")
            : CannedHandler.Json("""[{"result":null,"status":"OK","time":"1ms"},{"result":"Found 'x' for field `data`, but expected an object","status":"ERR","time":"1ms"},{"result":null,"status":"OK","time":"1ms"}]"""));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([Change()], CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Equal("surreal-test", error.Store);
        Assert.Equal("apply", error.Operation);
        Assert.Equal(Key, error.Key);
        Assert.Contains("Found 'x' for field", error.Message, StringComparison.Ordinal);
        Assert.Single(handler.SqlBodies, s => s.StartsWith("BEGIN", StringComparison.Ordinal)); // permanent: not retried
    }

    [Fact]
    public async Task A_failed_transaction_reports_the_statement_that_caused_it_not_the_echoes()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (sql, _) => sql.StartsWith("DEFINE", StringComparison.Ordinal)
            ? CannedHandler.Json("""[{"result":null,"status":"OK","time":"1ms","type":null}]""")
            : CannedHandler.Json("""
                [{"details":{"kind":"NotExecuted"},"kind":"Query","result":"The query was not executed due to a failed transaction","status":"ERR","time":"88µs","type":null},
                 {"kind":"Thrown","result":"An error occurred: index uniqueness violated","status":"ERR","time":"67µs","type":null}]
                """));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([Change()], CancellationToken.None));

        Assert.Contains("(Thrown): An error occurred: index uniqueness violated", error.Message, StringComparison.Ordinal);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task A_parse_error_400_is_permanent_and_quotes_the_server()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json(
            """{"code":400,"details":"Request problems dectected","description":"There is a problem with your request.","information":"Parse error: Unexpected token `an identifier`, expected Eof"}""",
            HttpStatusCode.BadRequest));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Contains("HTTP 400", error.Message, StringComparison.Ordinal);
        Assert.Contains("Parse error: Unexpected token", error.Message, StringComparison.Ordinal);
        Assert.Single(handler.SqlBodies);
    }

    [Theory]
    [InlineData(HttpStatusCode.Unauthorized, "authentication failed")]
    [InlineData(HttpStatusCode.Forbidden, "not allowed")]
    public async Task Authentication_and_permission_failures_are_permanent(HttpStatusCode status, string expected)
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json(
            """{"code":401,"details":"Authentication failed","description":"Your authentication details are invalid.","information":"There was a problem with authentication"}""", status));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([Change()], CancellationToken.None));

        Assert.False(error.IsTransient);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Single(handler.SqlBodies);
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError)]
    [InlineData(HttpStatusCode.BadGateway)]
    [InlineData(HttpStatusCode.ServiceUnavailable)]
    [InlineData(HttpStatusCode.TooManyRequests)]
    public async Task Server_errors_are_transient_and_retried_until_the_server_answers(HttpStatusCode status)
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, n) => n < 2
            ? CannedHandler.Text("upstream unavailable", status)
            : CannedHandler.Json("""[{"result":[{"count":3}],"status":"OK","time":"1ms","type":null}]"""));
        var store = Store(handler);

        Assert.Equal(3, await store.CountAsync("items", CancellationToken.None));
        Assert.Equal(3, handler.SqlBodies.Count());
    }

    [Fact]
    public async Task Server_error_text_with_line_breaks_and_escape_sequences_is_escaped_in_the_message()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json(
            """{"code":400,"information":"Parse error\n2030-01-01 ERROR forged\u001b[31m\u202e"}""",
            HttpStatusCode.BadRequest));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));

        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain('\u001b', error.Message);
        Assert.DoesNotContain('\u202e', error.Message);
        Assert.Contains(@"'Parse error\n2030-01-01 ERROR forged\e[31m\u202E'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retry_After_of_a_429_travels_on_the_transient_error_capped_at_MaxRetryAfter()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) =>
        {
            var busy = CannedHandler.Text("slow down", HttpStatusCode.TooManyRequests);
            busy.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(3));
            return busy;
        });

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store(handler, o => o.TransientRetryAttempts = 0).CountAsync("items", CancellationToken.None));
        Assert.True(error.IsTransient);
        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);

        var capped = await Assert.ThrowsAsync<SyncStoreException>(async () => await Store(handler, o => { o.TransientRetryAttempts = 0; o.MaxRetryAfter = TimeSpan.FromSeconds(1); }).CountAsync("items", CancellationToken.None));
        Assert.Equal(TimeSpan.FromSeconds(1), capped.RetryAfter);
    }

    [Fact]
    public async Task Server_errors_that_outlast_the_retries_surface_as_transient()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Text("down", HttpStatusCode.ServiceUnavailable));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));

        Assert.True(error.IsTransient);
        Assert.Contains("HTTP 503", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, handler.SqlBodies.Count()); // the first attempt and TransientRetryAttempts = 2
    }

    [Fact]
    public async Task A_refused_connection_is_transient()
    {
        var handler = new CannedHandler((_, _, _) => throw new HttpRequestException("Connection refused (surreal.test:8000)"));
        var store = Store(handler, o => o.ServerMajorVersion = 3);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.ApplyAsync([Change()], CancellationToken.None));

        Assert.True(error.IsTransient);
        Assert.Contains("Connection refused", error.Message, StringComparison.Ordinal);
        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public async Task A_transaction_conflict_is_retried()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (sql, n) => sql.StartsWith("BEGIN", StringComparison.Ordinal) && n == 1
            ? CannedHandler.Json("""[{"kind":"Internal","result":"Failed to commit transaction due to a read or write conflict. This transaction can be retried","status":"ERR","time":"1ms","type":null}]""")
            : CannedHandler.Json(Ok));
        var store = Store(handler);

        await store.ApplyAsync([Change()], CancellationToken.None);

        Assert.Equal(2, handler.SqlBodies.Count(s => s.StartsWith("BEGIN", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_request_that_hangs_times_out_as_transient()
    {
        var hanging = new HangingHandler();
        var store = new SurrealDbDocumentStore(
            new SurrealDbOptions { Endpoint = new Uri("http://surreal.test:8000"), RequestTimeout = TimeSpan.FromMilliseconds(200), TransientRetryAttempts = 1, RetryBaseDelay = TimeSpan.FromMilliseconds(1), ServerMajorVersion = 3 },
            new HttpClient(hanging));

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));

        Assert.True(error.IsTransient);
        Assert.Contains("timed out", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, hanging.Calls);
    }

    [Fact]
    public async Task Namespace_database_and_basic_credentials_are_sent_with_every_request()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json("""[{"result":[],"status":"OK","time":"1ms","type":null}]"""));
        var store = Store(handler, o =>
        {
            o.Username = "app";
            o.Password = "s3cret:x";
            o.AuthNamespace = "ns";
            o.AuthDatabase = "db";
        });

        await store.CountAsync("items", CancellationToken.None);

        var request = handler.Requests.Single(r => r.Path == "/sql").Request;
        Assert.Equal("Basic", request.Headers.Authorization!.Scheme);
        Assert.Equal("app:s3cret:x", Encoding.UTF8.GetString(Convert.FromBase64String(request.Headers.Authorization.Parameter!)));
        Assert.Equal("ns", request.Headers.GetValues("Surreal-NS").Single());
        Assert.Equal("db", request.Headers.GetValues("Surreal-DB").Single());
        Assert.Equal("ns", request.Headers.GetValues("Surreal-Auth-NS").Single());
        Assert.Equal("db", request.Headers.GetValues("Surreal-Auth-DB").Single());
    }

    [Fact]
    public async Task A_bearer_token_is_sent_instead_of_basic_credentials()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json("""[{"result":[],"status":"OK","time":"1ms","type":null}]"""));
        var store = Store(handler, o => o.BearerToken = "eyJ.token");

        await store.CountAsync("items", CancellationToken.None);

        var request = handler.Requests.Single(r => r.Path == "/sql").Request;
        Assert.Equal("Bearer", request.Headers.Authorization!.Scheme);
        Assert.Equal("eyJ.token", request.Headers.Authorization.Parameter);
    }

    [Fact]
    public async Task A_body_that_is_not_a_statement_array_is_a_permanent_error()
    {
        var handler = CannedHandler.Server("surrealdb-3.0.2", (_, _) => CannedHandler.Json("""{"unexpected":true}"""));
        var store = Store(handler);

        var error = await Assert.ThrowsAsync<SyncStoreException>(async () => await store.CountAsync("items", CancellationToken.None));
        Assert.False(error.IsTransient);
        Assert.Contains("array of statement results", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("surrealdb-2.6.5", 2)]
    [InlineData("surrealdb-2.0.0", 2)]
    [InlineData("surrealdb-3.0.2", 3)]
    [InlineData("3.1.0-beta", 3)]
    [InlineData("garbled", 3)]
    public void The_major_version_is_read_from_the_version_text(string text, int major) =>
        Assert.Equal(major, SurrealDbSchema.ParseMajorVersion(text));

    private sealed class HangingHandler : HttpMessageHandler
    {
        private int _calls;

        public int Calls => _calls;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }
}
