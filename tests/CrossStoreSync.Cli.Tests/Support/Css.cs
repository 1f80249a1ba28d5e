using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace CrossStoreSync.Cli.Tests.Support;

/// <summary>The css tool run as a real process (<c>dotnet css.dll ...</c>), its output captured.</summary>
public sealed class Css : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Channel<string> _stderrLines = Channel.CreateUnbounded<string>();
    private readonly Task _pumps;

    private Css(Process process)
    {
        _process = process;
        _pumps = Task.WhenAll(
            Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync() is { } line)
                {
                    lock (_stdout)
                    {
                        _stdout.AppendLine(line);
                    }
                }
            }),
            Task.Run(async () =>
            {
                while (await process.StandardError.ReadLineAsync() is { } line)
                {
                    lock (_stderr)
                    {
                        _stderr.AppendLine(line);
                    }

                    await _stderrLines.Writer.WriteAsync(line);
                }

                _stderrLines.Writer.TryComplete();
            }));
    }

    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(90);

    /// <summary>The built tool: src/CrossStoreSync.Cli/bin/&lt;configuration&gt;/net10.0/css.dll.</summary>
    public static string ToolPath
    {
        get
        {
            var here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
            var framework = Path.GetFileName(here);
            var configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
            var path = Path.Combine(RepositoryRoot, "src", "CrossStoreSync.Cli", "bin", configuration, framework, "css.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"The css tool is not built at '{path}'.");
        }
    }

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

            throw new InvalidOperationException("No CrossStoreSync.sln above " + AppContext.BaseDirectory);
        }
    }

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <c>css args</c> in <paramref name="workingDirectory"/>.</summary>
    public static Css Start(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(ToolPath);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return new Css(Process.Start(info) ?? throw new InvalidOperationException("Could not start css."));
    }

    /// <summary>Runs <c>css args</c> to the end.</summary>
    public static async Task<Css> RunAsync(string workingDirectory, params string[] args)
    {
        var css = Start(workingDirectory, null, args);
        await css.WaitAsync();
        return css;
    }

    /// <summary>Waits for the process to exit and its output to be read.</summary>
    public async Task WaitAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await _pumps.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"css did not exit within {Timeout}. stdout: {Stdout} stderr: {Stderr}");
        }
    }

    /// <summary>Reads standard error lines until one matches.</summary>
    public async Task<string> WaitForStderrLineAsync(Func<string, bool> match)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (await _stderrLines.Reader.WaitToReadAsync(cts.Token))
        {
            while (_stderrLines.Reader.TryRead(out var line))
            {
                if (match(line))
                {
                    return line;
                }
            }
        }

        throw new InvalidOperationException($"css ended before the expected line. stdout: {Stdout} stderr: {Stderr}");
    }

    /// <summary>Sends SIGINT, as Ctrl+C in a terminal does.</summary>
    public void Interrupt()
    {
        using var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -INT {_process.Id} failed with exit code {kill.ExitCode}.");
        }
    }

    /// <summary>The standard output parsed as one JSON document.</summary>
    public JsonElement Json()
    {
        try
        {
            using var document = JsonDocument.Parse(Stdout);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"css did not write JSON (exit {ExitCode}). stdout: {Stdout} stderr: {Stderr}", ex);
        }
    }

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
