using System.Diagnostics;
using System.Threading.Channels;

namespace CrossStoreSync.Sqlite.Tests;

/// <summary>Runs the crash host as a real child process and reads its stdout line by line.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly Task _pump;

    private ChildProcess(Process process)
    {
        _process = process;
        _pump = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                await _lines.Writer.WriteAsync(line);
            }

            _lines.Writer.TryComplete();
        });
    }

    public static ChildProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(HostPath());
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return new ChildProcess(Process.Start(info) ?? throw new InvalidOperationException("Could not start the crash host."));
    }

    /// <summary>Reads lines until one satisfies <paramref name="stop"/>; throws if the process ends or the timeout passes first.</summary>
    public async Task<string> ReadUntilAsync(Func<string, bool> stop, Action<string>? onLine = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        while (await _lines.Reader.WaitToReadAsync(cts.Token))
        {
            while (_lines.Reader.TryRead(out var line))
            {
                onLine?.Invoke(line);
                if (stop(line))
                {
                    return line;
                }
            }
        }

        throw new InvalidOperationException($"The crash host ended (exit {(_process.HasExited ? _process.ExitCode : -1)}) before the expected line. stderr: {await _process.StandardError.ReadToEndAsync()}");
    }

    /// <summary>Reads every line the process wrote before it ended (call after it ended, for instance after <see cref="KillHard"/>).</summary>
    public async Task DrainAsync(Action<string> onLine)
    {
        await _pump.WaitAsync(TimeSpan.FromSeconds(60));
        while (_lines.Reader.TryRead(out var line))
        {
            onLine(line);
        }
    }

    /// <summary>Kills the process with SIGKILL and reaps it.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        await _pump;
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static string HostPath()
    {
        // tests/CrossStoreSync.Sqlite.Tests/bin/<Configuration>/net10.0/ → tests/CrossStoreSync.CrashHost/bin/<Configuration>/net10.0/
        var here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        var framework = Path.GetFileName(here);
        var configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        var tests = Path.GetFullPath(Path.Combine(here, "..", "..", "..", ".."));
        var path = Path.Combine(tests, "CrossStoreSync.CrashHost", "bin", configuration, framework, "CrossStoreSync.CrashHost.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Crash host not built at '{path}'.");
    }
}
