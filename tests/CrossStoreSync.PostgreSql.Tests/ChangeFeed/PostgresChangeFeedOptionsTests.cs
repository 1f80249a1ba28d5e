using CrossStoreSync.PostgreSql.ChangeFeed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.PostgreSql.Tests.ChangeFeed;

public sealed class PostgresChangeFeedOptionsTests
{
    private static PostgresChangeFeedOptions Valid() =>
        new PostgresChangeFeedOptions { ConnectionString = "Host=127.0.0.1;Port=55432;Username=postgres;Database=app" }.MapTable("public.notes", "notes");

    [Theory]
    [InlineData("BatchSize", "PostgresChangeFeedOptions.BatchSize is 0; it must be in 1..10000.")]
    [InlineData("SlotName", "PostgresChangeFeedOptions.SlotName is 'Bad-Slot'")]
    [InlineData("PublicationName", "PostgresChangeFeedOptions.PublicationName is 'drop table x'")]
    [InlineData("StatusInterval", "PostgresChangeFeedOptions.StatusInterval is 00:00:00.0010000")]
    [InlineData("HeartbeatInterval", "PostgresChangeFeedOptions.HeartbeatInterval is -00:00:01")]
    [InlineData("ConnectionString", "PostgresChangeFeedOptions.ConnectionString is empty")]
    [InlineData("Tables", "PostgresChangeFeedOptions.Tables is empty")]
    public void A_bad_option_is_refused_with_its_name_and_value(string option, string message)
    {
        var options = option == "Tables" ? new PostgresChangeFeedOptions { ConnectionString = "Host=x" } : Valid();
        switch (option)
        {
            case "BatchSize": options.BatchSize = 0; break;
            case "SlotName": options.SlotName = "Bad-Slot"; break;
            case "PublicationName": options.PublicationName = "drop table x"; break;
            case "StatusInterval": options.StatusInterval = TimeSpan.FromMilliseconds(1); break;
            case "HeartbeatInterval": options.HeartbeatInterval = TimeSpan.FromSeconds(-1); break;
            case "ConnectionString": options.ConnectionString = " "; break;
        }

        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
        Assert.Equal(option, error.ParamName);
    }

    [Theory]
    [InlineData("public.\"quoted\"")]
    [InlineData("a.b.c")]
    [InlineData("notes; drop table x")]
    [InlineData("")]
    public void A_bad_table_name_is_refused_with_the_value(string table)
    {
        var error = Assert.Throws<ArgumentException>(() => new PostgresChangeFeedOptions().MapTable(table, "notes"));
        Assert.Contains($"'{table}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_table_mapped_twice_is_refused()
    {
        var options = Valid().MapTable("notes", "other");
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("'public.notes' twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_options_stop_the_host_at_start_with_the_message()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddCrossStoreSync(o => o.AddCollection("notes"))
            .AddPostgresChangeFeed(o =>
            {
                o.ConnectionString = "Host=127.0.0.1";
                o.MapTable("notes", "notes");
                o.BatchSize = 20_000;
            });
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("PostgresChangeFeedOptions.BatchSize is 20000; it must be in 1..10000.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_table_mapped_to_a_collection_that_is_not_configured_stops_the_host_at_start()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddCrossStoreSync(o => o.AddCollection("notes"))
            .AddPostgresChangeFeed(o =>
            {
                o.ConnectionString = "Host=127.0.0.1";
                o.MapTable("app.memories", "memories");
            });
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("maps app.memories to collection 'memories', which is not configured", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_position_round_trips_and_tells_what_a_restart_skips()
    {
        var position = new PostgresFeedPosition(0x16B3748, 12, 0x16B37A0);
        Assert.Equal("pgoutput/1;tx=0/16B3748;i=12;c=0/16B37A0", position.ToString());
        Assert.Equal(position, PostgresFeedPosition.Parse(position.ToString()));
        Assert.True(position.IsHandled(0x16B3000, 500));
        Assert.True(position.IsHandled(0x16B3748, 12));
        Assert.False(position.IsHandled(0x16B3748, 13));
        Assert.False(position.IsHandled(0x16B3749, 1));
        var copying = position with { CopyPending = true };
        Assert.Equal("pgoutput/1;tx=0/16B3748;i=12;c=0/16B37A0;copy", copying.ToString());
        Assert.Equal(copying, PostgresFeedPosition.Parse(copying.ToString()));
        Assert.Throws<FormatException>(() => PostgresFeedPosition.Parse("pgoutput/1;tx=0/1;i=1;c=0/0;other"));
        Assert.Throws<FormatException>(() => PostgresFeedPosition.Parse("pgoutput/1;tx=zz;i=1;c=0/0"));
        Assert.Throws<FormatException>(() => PostgresFeedPosition.Parse("surreal/3"));
    }
}
