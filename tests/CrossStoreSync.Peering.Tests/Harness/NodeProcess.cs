using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace CrossStoreSync.Peering.Tests.Harness;

/// <summary>A node of the harness as a real child process (tests/CrossStoreSync.PeerNode), driven over stdin/stdout.</summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly StringBuilder _stderr = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Task _pump;

    private NodeProcess(int nodeId, Process process)
    {
        NodeId = nodeId;
        _process = process;
        _pump = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                await _lines.Writer.WriteAsync(line);
            }

            _lines.Writer.TryComplete();
        });
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
    }

    public int NodeId { get; }

    public bool HasExited => _process.HasExited;

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

    public static async Task<NodeProcess> StartAsync(int nodeId, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        info.ArgumentList.Add(HostPath());
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var node = new NodeProcess(nodeId, Process.Start(info) ?? throw new InvalidOperationException("Could not start a node process."));
        try
        {
            var ready = await node.ReadAsync(TimeSpan.FromSeconds(60));
            if (!ready.TryGetProperty("ready", out _))
            {
                throw new InvalidOperationException($"Node {nodeId} did not report ready: {ready}");
            }
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }

        return node;
    }

    /// <summary>Sends one command and returns its JSON answer; throws with the node's message when it failed.</summary>
    public async Task<JsonElement> SendAsync(string command, TimeSpan? timeout = null)
    {
        await _gate.WaitAsync();
        try
        {
            await _process.StandardInput.WriteLineAsync(command);
            await _process.StandardInput.FlushAsync();
            var answer = await ReadAsync(timeout ?? TimeSpan.FromSeconds(120));
            if (answer.TryGetProperty("ok", out var ok) && !ok.GetBoolean())
            {
                throw new InvalidOperationException($"Node {NodeId}: '{command}' failed: {answer.GetProperty("error")}: {answer.GetProperty("message")}");
            }

            return answer;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<JsonElement> ReadAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            if (await _lines.Reader.WaitToReadAsync(cts.Token) && _lines.Reader.TryRead(out var line))
            {
                return JsonDocument.Parse(line).RootElement.Clone();
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Node {NodeId} did not answer within {timeout}. stderr: {Stderr}");
        }

        throw new InvalidOperationException($"Node {NodeId} ended (exit {(_process.HasExited ? _process.ExitCode : -1)}) without answering. stderr: {Stderr}");
    }

    /// <summary>Waits for the process to end on its own (a crash plan kills it).</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
    }

    /// <summary>SIGKILL, then reap.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                await SendAsync("exit", TimeSpan.FromSeconds(20));
                await WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or OperationCanceledException or IOException)
            {
                Kill();
            }
        }

        await _pump;
        _process.Dispose();
        _gate.Dispose();
    }

    private static string HostPath()
    {
        // tests/CrossStoreSync.Peering.Tests/bin/<Configuration>/net10.0/ → tests/CrossStoreSync.PeerNode/bin/<Configuration>/net10.0/
        var here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        var framework = Path.GetFileName(here);
        var configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        var tests = Path.GetFullPath(Path.Combine(here, "..", "..", "..", ".."));
        var path = Path.Combine(tests, "CrossStoreSync.PeerNode", "bin", configuration, framework, "CrossStoreSync.PeerNode.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"The peer node host is not built at '{path}'.");
    }
}
