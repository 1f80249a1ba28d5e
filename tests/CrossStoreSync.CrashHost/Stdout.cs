using System.Text;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The lines the parent test reads: written whole (one lock), flushed at once, so a SIGKILL never leaves a line half
/// written and every acknowledged line was on the pipe before the process could die.
/// </summary>
internal sealed class Stdout
{
    private readonly StreamWriter _output = new(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = true };
    private readonly Lock _gate = new();

    public void Say(string line)
    {
        lock (_gate)
        {
            _output.WriteLine(line);
        }
    }
}
