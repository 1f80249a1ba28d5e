using CrossStoreSync.Errors;

using System.Globalization;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>
/// The feed's durable position, saved in the change log with every batch it writes (same transaction when the log is
/// coupled to the source). <see cref="Transaction"/> is the commit LSN of the transaction the last handled row change
/// belongs to (pgoutput's <c>Begin.final_lsn</c>), <see cref="Index"/> how many of that transaction's row changes
/// are handled, and <see cref="Confirmable"/> the highest LSN the feed may report as flushed to the server: everything
/// committed before it is handled.
/// </summary>
/// <remarks>
/// Text form: <c>pgoutput/1;tx=0/1A2B3C;i=12;c=0/1A2B40</c>, with <c>;copy</c> appended while the rows the tables held
/// when the slot was created are still being copied (<see cref="CopyPending"/>; an interrupted copy starts over). A row change (tx, n) (n counts from 1) is already handled when tx &lt; Transaction, or tx =
/// Transaction and n ≤ Index: after a restart the server replays from the slot's confirmed LSN and those are skipped.
/// </remarks>
internal readonly record struct PostgresFeedPosition(ulong Transaction, int Index, ulong Confirmable, bool CopyPending = false)
{
    private const string Prefix = "pgoutput/1;";

    public bool IsHandled(ulong transaction, int index) => transaction < Transaction || transaction == Transaction && index <= Index;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Prefix}tx={new NpgsqlLogSequenceNumber(Transaction)};i={Index};c={new NpgsqlLogSequenceNumber(Confirmable)}{(CopyPending ? ";copy" : string.Empty)}");

    /// <exception cref="FormatException">The text is not a position written by this feed.</exception>
    public static PostgresFeedPosition Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException($"The saved feed position {SafeText.Quote(text)} is not a pgoutput position (it must start with {SafeText.Quote(Prefix)}).");
        }

        var body = text.AsSpan(Prefix.Length);
        Span<Range> parts = stackalloc Range[5];
        var count = body.Split(parts, ';');
        var copy = count == 4 && body[parts[3]].SequenceEqual("copy");
        if (count != 3 && !copy
            || !body[parts[0]].StartsWith("tx=") || !NpgsqlLogSequenceNumber.TryParse(body[parts[0]][3..], out var tx)
            || !body[parts[1]].StartsWith("i=") || !int.TryParse(body[parts[1]][2..], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            || !body[parts[2]].StartsWith("c=") || !NpgsqlLogSequenceNumber.TryParse(body[parts[2]][2..], out var confirmable))
        {
            throw new FormatException($"The saved feed position {SafeText.Quote(text)} cannot be read (expected '{Prefix}tx=<lsn>;i=<count>;c=<lsn>').");
        }

        return new PostgresFeedPosition((ulong)tx, index, (ulong)confirmable, copy);
    }
}
