using System.Diagnostics;
using CrossStoreSync.Cli.Tests.Support;

namespace CrossStoreSync.Cli.Tests;

/// <summary>
/// The tool in a real terminal: a tmux session (its own server socket), keys sent as an operator types them, the pane
/// captured once the command signals the end with <c>tmux wait-for</c>. Shows that the live progress display and the
/// tables render on a terminal (the process tests read --json, where neither is drawn).
/// </summary>
public sealed class TerminalTests : IDisposable
{
    private readonly Deployment _app = Deployment.Sqlite();
    private readonly string _socket = $"css-{Guid.NewGuid():N}"[..16];

    [SkippableFact]
    public async Task Check_and_migrate_draw_progress_bars_and_tables_in_a_terminal()
    {
        var tmuxMissing = !File.Exists("/usr/bin/tmux") && !File.Exists("/usr/local/bin/tmux");
        if (tmuxMissing && Environment.GetEnvironmentVariable("CI") == "true")
        {
            Assert.Fail("tmux is not installed; eng/test.sh installs it (apt-get install -y tmux).");
        }

        Skip.If(tmuxMissing, "tmux is not installed: run apt-get install -y tmux (eng/test.sh does) to run the terminal test.");
        await _app.WriteNotesAsync(1500);
        _app.Sql("vectors.db", "DELETE FROM vectors WHERE id IN ('n-1', 'n-2', 'n-3')");

        await Tmux("new-session", "-d", "-s", "ops", "-x", "160", "-y", "50", "-e", "LANG=C.UTF-8", "-c", _app.Directory, "bash --norc --noprofile");
        var css = $"dotnet {Css.ToolPath}";

        await RunInTerminalAsync($"{css} check", "checked");
        var check = await CaptureAsync();
        Assert.Contains("━", check, StringComparison.Ordinal);                          // the progress bars
        Assert.Contains("100%", check, StringComparison.Ordinal);
        Assert.Contains("check notes → vectors", check, StringComparison.Ordinal);
        Assert.Contains("╭", check, StringComparison.Ordinal);                          // the report's rounded tables
        Assert.Contains("│ vectors", check, StringComparison.Ordinal);
        Assert.Contains("notes/n-1", check, StringComparison.Ordinal);
        Assert.Contains("Differences found.", check, StringComparison.Ordinal);
        Assert.Contains("exit=1", check, StringComparison.Ordinal);

        _app.Sql("graph.db", "DELETE FROM nodes");
        await Tmux("send-keys", "-t", "ops", "clear", "Enter");
        await RunInTerminalAsync($"{css} migrate graph-rebuild --target graph --batch-size 100", "migrated");
        var migrate = await CaptureAsync();
        Assert.Contains("graph-rebuild → graph", migrate, StringComparison.Ordinal);
        Assert.Contains("/s, ETA", migrate, StringComparison.Ordinal);
        Assert.Contains("100%", migrate, StringComparison.Ordinal);
        Assert.Contains("Migration graph-rebuild → graph", migrate, StringComparison.Ordinal);
        Assert.Contains("exit=0", migrate, StringComparison.Ordinal);
    }

    private async Task RunInTerminalAsync(string command, string signal)
    {
        await Tmux("send-keys", "-t", "ops", $"{command}; echo exit=$?; tmux -L {_socket} wait-for -S {signal}", "Enter");
        await Tmux("wait-for", signal);
    }

    private Task<string> CaptureAsync() => Tmux("capture-pane", "-p", "-J", "-S", "-300", "-t", "ops");

    private async Task<string> Tmux(params string[] args)
    {
        var info = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-L");
        info.ArgumentList.Add(_socket);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(Css.Timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            var pane = await Tmux("capture-pane", "-p", "-J", "-S", "-300", "-t", "ops");
            throw new TimeoutException($"tmux {string.Join(' ', args)} did not finish within {Css.Timeout}. Pane:\n{pane}");
        }

        Assert.True(process.ExitCode == 0, $"tmux {string.Join(' ', args)} failed: {await error}");
        return await output;
    }

    public void Dispose()
    {
        try
        {
            using var kill = Process.Start(new ProcessStartInfo("tmux", ["-L", _socket, "kill-server"]) { RedirectStandardError = true, UseShellExecute = false });
            kill?.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // tmux is not installed: the test was skipped.
        }

        _app.Dispose();
    }
}
