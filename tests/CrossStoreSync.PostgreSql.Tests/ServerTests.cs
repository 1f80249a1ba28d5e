using CrossStoreSync.PostgreSql.Tests.Support;

namespace CrossStoreSync.PostgreSql.Tests;

public sealed class ServerTests
{
    [Fact]
    public async Task The_test_server_runs_with_logical_replication()
    {
        await using var database = await PostgresServer.CreateDatabaseAsync();
        Assert.Equal("logical", await database.ScalarAsync("SHOW wal_level"));
        Assert.Equal("on", await database.ScalarAsync("SHOW synchronous_commit"));
    }
}
