using System.Diagnostics;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.Support;

/// <summary>
/// The real PostgreSQL server the tests run against: <c>CSS_PG_CONNECTION</c> when set, otherwise the private server
/// that <c>eng/postgres.sh</c> installs and starts (the test script starts it first; this starts it when the tests are
/// run on their own). Each test class gets its own fresh database, dropped at the end.
/// </summary>
public static class PostgresServer
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _admin;

    /// <summary>The connection string of the server's <c>postgres</c> database (superuser).</summary>
    public static async Task<string> AdminConnectionStringAsync()
    {
        if (_admin is { } known)
        {
            return known;
        }

        await Gate.WaitAsync();
        try
        {
            if (_admin is { } again)
            {
                return again;
            }

            var configured = Environment.GetEnvironmentVariable("CSS_PG_CONNECTION");
            var candidate = string.IsNullOrWhiteSpace(configured) ? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres" : configured;
            if (!await CanConnectAsync(candidate))
            {
                if (!string.IsNullOrWhiteSpace(configured))
                {
                    throw new InvalidOperationException($"CSS_PG_CONNECTION is set but PostgreSQL does not accept connections there: '{configured}'.");
                }

                candidate = StartPrivateServer();
            }

            _admin = candidate;
            return candidate;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    public static async Task<TestDatabase> CreateDatabaseAsync(string prefix = "css")
    {
        var admin = await AdminConnectionStringAsync();
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)].ToLowerInvariant();
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        var builder = new NpgsqlConnectionStringBuilder(admin) { Database = name };
        return new TestDatabase(admin, name, builder.ConnectionString);
    }

    private static async Task<bool> CanConnectAsync(string connectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 3, Pooling = false };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync();
            return true;
        }
        catch (NpgsqlException)
        {
            return false;
        }
    }

    private static string StartPrivateServer()
    {
        var script = Path.Combine(RepositoryRoot(), "eng", "postgres.sh");
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add("start");
        using var process = Process.Start(info) ?? throw new InvalidOperationException("Could not run eng/postgres.sh.");
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"eng/postgres.sh start failed (exit {process.ExitCode}): {error}");
        }

        return output.Trim().Split('\n')[^1];
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CrossStoreSync.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Could not find the repository root (CrossStoreSync.sln) above " + AppContext.BaseDirectory);
    }
}

/// <summary>A database created for one test class; dropped (connections terminated) on dispose.</summary>
public sealed class TestDatabase(string admin, string name, string connectionString) : IAsyncDisposable
{
    /// <summary>The database name.</summary>
    public string Name { get; } = name;

    /// <summary>Its connection string.</summary>
    public string ConnectionString { get; } = connectionString;

    /// <summary>Opens a connection to it.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs one SQL statement and returns the affected rows.</summary>
    public async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one SQL query and returns the first column of the first row.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // A leftover test database is harmless; the server's data directory is private to the tests.
        }
    }
}
