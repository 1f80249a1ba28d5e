using CrossStoreSync.PostgreSql.Log;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.PostgreSql.Tests.Dispatch;

public sealed class PostgreSqlOptionsTests
{
    public static TheoryData<string, string> BadOptions => new()
    {
        { "no connection string", "PostgreSqlSyncOptions.ConnectionString is empty" },
        { "malformed connection string", "PostgreSqlSyncOptions.ConnectionString is not a valid Npgsql connection string" },
        { "Schema=Bad-Schema", "PostgresChangeLogOptions.Schema is 'Bad-Schema'" },
        { "Partitions=0", "PostgresChangeLogOptions.Partitions is 0; it must be in 1..1024" },
        { "DocumentStoreName=blank", "PostgreSqlSyncOptions.DocumentStoreName is ' '" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Bad_options_stop_the_host_before_anything_is_written_naming_the_option_and_value(string change, string expected)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddCrossStoreSync(o => o.AddCollection("items", 4)).UsePostgreSql(o =>
        {
            o.ConnectionString = "Host=127.0.0.1;Port=1;Database=nowhere;Username=nobody;Password=secret-value";
            switch (change)
            {
                case "no connection string": o.ConnectionString = ""; break;
                case "malformed connection string": o.ConnectionString = "Host=x;Password=secret-value;Unknown Key=1"; break;
                case "Schema=Bad-Schema": o.Schema = "Bad-Schema"; break;
                case "Partitions=0": o.Partitions = 0; break;
                case "DocumentStoreName=blank": o.DocumentStoreName = " "; break;
            }
        });
        using var host = builder.Build();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("secret-value", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_log_options_are_checked_on_their_own_too()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PostgresChangeLogOptions { Partitions = 2000 }.Validate());
        new PostgresChangeLogOptions { Schema = "tenant_1", Partitions = 1 }.Validate();
    }
}
