using System.Collections.Concurrent;
using System.Text;
using CrossStoreSync.Configuration;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using CrossStoreSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.Tests.Errors;

/// <summary>Every kind of user input quoted in an exception message or a log value comes out escaped and bounded.</summary>
public sealed class SafeErrorReportTests
{
    private const string Forged = "x\n2030-01-01 ERROR forged";

    private static void AssertSafe(string text)
    {
        foreach (var c in text)
        {
            Assert.False(char.IsControl(c) || c is '\u2028' or '\u2029' or '\u202E' or '\u2066', $"Unescaped U+{(int)c:X4} in: {text}");
        }
    }

    [Fact]
    public void Id_that_would_forge_a_log_line_is_escaped_in_the_validation_error()
    {
        var error = Assert.Throws<ArgumentException>(() => new EntityKey("items", Forged));

        AssertSafe(error.Message);
        Assert.Contains(@"'x\n2030-01-01 ERROR forged'", error.Message, StringComparison.Ordinal);
        Assert.Equal("id", error.ParamName);
    }

    [Fact]
    public void Very_long_id_is_bounded_in_the_error()
    {
        var error = Assert.Throws<ArgumentException>(() => new EntityKey("items", new string('a', 600)));

        Assert.Contains("(600 chars)", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 400, error.Message);
    }

    [Fact]
    public void Collection_name_with_a_line_break_is_escaped()
    {
        var options = new CrossStoreSyncOptions();
        var error = Assert.Throws<ArgumentException>(() => options.AddCollection("notes\r\nERROR forged"));

        AssertSafe(error.Message);
        Assert.Contains(@"'notes\r\nERROR forged'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Edge_type_with_a_terminal_escape_is_escaped()
    {
        var error = Assert.Throws<ArgumentException>(() => new SyncEdge("KNOWS\u001B[2J", new EntityKey("items", "b")));

        AssertSafe(error.Message);
        Assert.Contains(@"'KNOWS\e[2J'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Document_preview_in_a_validation_error_is_escaped_and_bounded()
    {
        await using var engine = await TestEngine.StartAsync();
        var document = Encoding.UTF8.GetBytes("[\"\u001B[31m\u202Eevil\n" + new string('z', 5000) + "\"]");
        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await engine.Manager.WriteAsync(new SyncEntity(Items.Key("d"), document)));

        AssertSafe(error.Message);
        Assert.Contains(@"(starts with '[""\e[31m\u202Eevil\n", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 400, error.Message);
    }

    [Fact]
    public async Task Ids_with_separators_and_bidi_controls_and_server_text_with_line_breaks_are_escaped_in_logs_and_errors()
    {
        var logs = new CapturingLoggerProvider();
        await using var engine = await TestEngine.StartAsync(configureServices: s => s.AddLogging(b => b.AddProvider(logs)));

        // A valid id (no control characters) that still holds a line separator and a right-to-left override.
        var key = Items.Key("a\u2028b\u202Ec");
        engine.VectorFaults.RejectKey(key, "index refused it\r\n2030-01-01 ERROR forged");
        var ticket = await engine.Manager.WriteAsync(Items.Entity("a\u2028b\u202Ec"));
        Assert.Equal(SyncWaitOutcome.DeadLettered, await engine.Manager.WaitForSyncAsync(ticket, TestEngine.Timeout));

        var line = Assert.Single(logs.Messages, m => m.Contains("dead-lettered", StringComparison.Ordinal));
        AssertSafe(line);
        Assert.Contains(@"'items/a\u2028b\u202Ec'", line, StringComparison.Ordinal);
        Assert.Contains(@"\r\n2030-01-01 ERROR forged", line, StringComparison.Ordinal);

        // The source's own error text, wrapped in the library's exception.
        engine.SourceFaults.RejectKey(Items.Key("s"), "constraint failed\n2030-01-01 ERROR forged");
        var rejected = await Assert.ThrowsAsync<SyncWriteRejectedException>(async () => await engine.Manager.WriteAsync(Items.Entity("s")));
        AssertSafe(rejected.Message);
        Assert.Contains(@"constraint failed\n2030-01-01 ERROR forged", rejected.Message, StringComparison.Ordinal);
        Assert.All(logs.Messages, AssertSafe);
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _messages = new();

        public IReadOnlyCollection<string> Messages => _messages;

        public ILogger CreateLogger(string categoryName) => new Logger(_messages);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> messages) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                messages.Enqueue(formatter(state, exception));
        }
    }
}
