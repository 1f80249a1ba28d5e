using CrossStoreSync.Errors;

using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Npgsql;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

public sealed partial class PostgresChangeFeed
{
    /// <summary>
    /// Copies every row the followed tables hold through the engine, then saves the position without the copy marker.
    /// The slot already exists, so the stream replays every change made since its creation afterwards: a row copied
    /// in a newer state than a replayed change is briefly older in the stores, then the stream brings it up to date.
    /// </summary>
    private async Task<PostgresFeedPosition> CopyExistingRowsAsync(PostgresFeedPosition start, CancellationToken cancellationToken)
    {
        var position = new FeedPosition(Name, start.ToString());
        var batch = new Dictionary<EntityKey, FeedChange>(_options.BatchSize);
        var copied = 0L;
        var keys = Volatile.Read(ref _keyColumns);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

        // One snapshot for every table: the one the slot exported when this process created it (the copy then holds
        // exactly what the slot starts after), otherwise (a copy interrupted by a restart) a fresh one.
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        if (_exported is { Snapshot: var snapshot } && SnapshotName().IsMatch(snapshot))
        {
            await using var use = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshot}'", connection, transaction);
            await use.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await DisposeExportedAsync().ConfigureAwait(false);
        foreach (var mapping in _options.Tables)
        {
            var keyColumns = keys.TryGetValue((mapping.Schema, mapping.Name), out var known) ? known : [];
            await using var command = new NpgsqlCommand($"SELECT * FROM {mapping.QuotedTable}", connection, transaction);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var columns = new PostgresColumn[reader.FieldCount];
            for (var i = 0; i < columns.Length; i++)
            {
                columns[i] = new PostgresColumn(reader.GetName(i), reader.GetDataTypeOID(i), Array.IndexOf(keyColumns, reader.GetName(i)) >= 0);
            }

            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var values = new object?[columns.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = await reader.IsDBNullAsync(i, cancellationToken).ConfigureAwait(false) ? null : reader.GetValue(i);
                }

                var row = new PostgresRow(mapping.Schema, mapping.Name, columns, values, keyColumns, keyOnly: false);
                var change = MapCopied(mapping, row);
                batch[change.Key] = change;
                if (batch.Count == _options.BatchSize)
                {
                    await WriteCopiedAsync(batch, position, cancellationToken).ConfigureAwait(false);
                    copied += batch.Count;
                    batch.Clear();
                }
            }
        }

        if (batch.Count > 0)
        {
            await WriteCopiedAsync(batch, position, cancellationToken).ConfigureAwait(false);
            copied += batch.Count;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var done = start with { CopyPending = false };
        await _writer.SavePositionAsync(new FeedPosition(Name, done.ToString()), cancellationToken).ConfigureAwait(false);
        _metrics.AddChanges(copied, "copied");
        PostgresChangeFeedLog.RowsCopied(_logger, Name, copied);
        return done;
    }

    private async ValueTask DisposeExportedAsync()
    {
        if (_exported is { Connection: var connection })
        {
            _exported = null;
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    [GeneratedRegex("^[0-9A-Fa-f-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex SnapshotName();

    private async Task WriteCopiedAsync(Dictionary<EntityKey, FeedChange> batch, FeedPosition position, CancellationToken cancellationToken)
    {
        var ticket = await _writer.WriteAsync([.. batch.Values], position, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _lastTicket, new StrongBox<SyncTicket>(ticket));
    }

    private FeedChange MapCopied(PostgresTableMapping mapping, PostgresRow row)
    {
        try
        {
            var key = new EntityKey(mapping.Collection, mapping.Id(row));
            var entity = mapping.Map(key, row);
            if (entity is not null && entity.Key != key)
            {
                throw new InvalidOperationException($"The mapping returned an entity with key {SafeText.Quote(entity.Key)}; it must keep the key it was given ({SafeText.Quote(key)}).");
            }

            return entity is null ? FeedChange.Delete(key) : FeedChange.Upsert(entity);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new PostgresChangeFeedException($"The mapping of table {mapping.Table} failed on a row copied at start: {SafeText.Text(ex.Message)} Fix the mapping and restart the feed; the copy starts over.", Name, "map", ex);
        }
    }
}
