using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CrossStoreSync.SurrealDb;
using CrossStoreSync.SurrealDb.Stores;

namespace CrossStoreSync.SurrealDb.Tests.Support;

/// <summary>
/// Starts the test host (eng/surrealdb-host/server.mjs: the real SurrealDB 3 engine from @surrealdb/node behind an
/// HTTP facade) once for the test run on a free port of 127.0.0.1, and stops it at the end. When it cannot start, every
/// test that needs it fails with the reason and the command that fixes it; they are never skipped.
/// </summary>
public sealed class SurrealDbHost : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private Process? _process;
    private readonly StringBuilder _stderr = new();

    public Uri Endpoint { get; private set; } = new("http://127.0.0.1:1/");

    public string? StartError { get; private set; }

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "CrossStoreSync.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"CrossStoreSync.sln not found above {AppContext.BaseDirectory}.");
        }
    }

    public async Task InitializeAsync()
    {
        var hostDir = Path.Combine(RepositoryRoot, "eng", "surrealdb-host");
        if (!Directory.Exists(Path.Combine(hostDir, "node_modules", "@surrealdb", "node")))
        {
            StartError = $"The SurrealDB test host is not installed: run `npm ci` in {hostDir} (eng/test.sh does it), with Node.js 20 or later.";
            return;
        }

        var start = new ProcessStartInfo("node", ["server.mjs", "--port", "0"])
        {
            WorkingDirectory = hostDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // the host exits when this pipe closes, even if the test run dies
            UseShellExecute = false,
        };
        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned null.");
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            StartError = $"Could not start `node` for the SurrealDB test host ({ex.Message}). Install Node.js 20+ and run `npm ci` in {hostDir}.";
            return;
        }

        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        _process.BeginErrorReadLine();

        using var timeout = new CancellationTokenSource(StartTimeout);
        try
        {
            while (true)
            {
                var line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
                if (line is null)
                {
                    StartError = $"The SurrealDB test host exited during start-up (code {(_process.HasExited ? _process.ExitCode : -1)}): {Stderr()}";
                    return;
                }

                if (line.StartsWith("listening ", StringComparison.Ordinal))
                {
                    Endpoint = new Uri(line["listening ".Length..].Trim() + "/");
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            StartError = $"The SurrealDB test host did not report its port within {StartTimeout.TotalSeconds} s: {Stderr()}";
            return;
        }

        using var health = await Http.GetAsync(new Uri(Endpoint, "health"));
        if (!health.IsSuccessStatusCode)
        {
            StartError = $"The SurrealDB test host answered /health with {(int)health.StatusCode}.";
        }
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.StandardInput.Close();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process?.Dispose();
        Http.Dispose();
    }

    /// <summary>Fails the calling test when the host is not running.</summary>
    public void EnsureRunning()
    {
        if (StartError is not null)
        {
            Assert.Fail(StartError);
        }
    }

    /// <summary>Options for a new, empty database of the hosted engine.</summary>
    public SurrealDbOptions NewDatabaseOptions(string? storeName = null)
    {
        EnsureRunning();
        return new SurrealDbOptions
        {
            Endpoint = Endpoint,
            Namespace = "tests",
            Database = "db_" + Guid.NewGuid().ToString("N"),
            StoreName = storeName ?? "surrealdb",
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
        };
    }

    /// <summary>A store over a new, empty database.</summary>
    public SurrealDbDocumentStore NewStore(SurrealDbOptions? options = null) => new(options ?? NewDatabaseOptions(), Http);

    /// <summary>Runs SurrealQL directly (behind the library's back) and returns the per-statement items.</summary>
    public Task<JsonElement> SqlAsync(SurrealDbOptions options, string sql) => RawSql.SendAsync(Http, options, sql);

    private string Stderr()
    {
        lock (_stderr)
        {
            return _stderr.Length == 0 ? "(no stderr)" : _stderr.ToString();
        }
    }
}

/// <summary>Plain HTTP access to /sql, as another program would use it.</summary>
public static class RawSql
{
    public static async Task<JsonElement> SendAsync(HttpClient http, SurrealDbOptions options, string sql)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Endpoint!, "sql")) { Content = new StringContent(sql, Encoding.UTF8, "text/plain") };
        request.Headers.Add("Surreal-NS", options.Namespace);
        request.Headers.Add("Surreal-DB", options.Database);
        request.Headers.Add("Accept", "application/json");
        if (options.Username is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{options.Password}")));
        }

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"/sql answered {(int)response.StatusCode}: {body}");
        var items = JsonDocument.Parse(body).RootElement.Clone();
        foreach (var item in items.EnumerateArray())
        {
            Assert.True(item.GetProperty("status").GetString() == "OK", $"Statement failed: {item}");
        }

        return items;
    }
}

[CollectionDefinition(Name)]
public sealed class SurrealDbCollection : ICollectionFixture<SurrealDbHost>
{
    public const string Name = "surrealdb";
}
