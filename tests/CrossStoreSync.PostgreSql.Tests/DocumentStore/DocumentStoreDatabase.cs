using CrossStoreSync.PostgreSql.Stores;
using CrossStoreSync.PostgreSql.Tests.Support;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Tests.DocumentStore;

/// <summary>
/// One fresh database per test class with a data source over it; each test takes its own schema, so tests of a class
/// share the database without seeing each other's tables.
/// </summary>
public sealed class DocumentStoreDatabase : IAsyncLifetime
{
    private TestDatabase? _database;

    public TestDatabase Database => _database ?? throw new InvalidOperationException("Database not created.");

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresServer.CreateDatabaseAsync("cssdoc");
        DataSource = NpgsqlDataSource.Create(_database.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    /// <summary>A schema name no other test uses.</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("N")[..20];

    /// <summary>A store in a schema of its own.</summary>
    public PostgresDocumentStore NewStore(string name = "documents") => new(DataSource, name, NewSchema());

    /// <summary>Runs one statement with parameters <c>$1…</c> and returns the affected rows.</summary>
    public async Task<int> ExecuteAsync(string sql, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one query with parameters <c>$1…</c> and returns the first column of the first row.</summary>
    public async Task<object?> ScalarAsync(string sql, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return await command.ExecuteScalarAsync();
    }
}
