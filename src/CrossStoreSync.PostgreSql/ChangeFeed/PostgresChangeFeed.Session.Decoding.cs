using CrossStoreSync.Errors;

using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

public sealed partial class PostgresChangeFeed
{
    /// <summary>Turning pgoutput row messages into feed events: rows read into <see cref="PostgresRow"/>, then mapped.</summary>
    private sealed partial class Session
    {
        private async ValueTask<FeedEvent> ToEventAsync(PgOutputReplicationMessage message, ulong transaction, int index, CancellationToken cancellationToken)
        {
            if (message is TruncateMessage truncate)
            {
                var names = string.Join(", ", truncate.Relations.Select(r => r.Namespace + "." + r.RelationName));
                PostgresChangeFeedLog.TruncateIgnored(feed._logger, feed.Name, names, new NpgsqlLogSequenceNumber(transaction).ToString());
                feed._metrics.AddChanges(1, "ignored");
                return new FeedEvent(FeedEventKind.Ignored, transaction, index, 0);
            }

            var relationId = message switch
            {
                InsertMessage m => m.Relation.RelationId,
                UpdateMessage m => m.Relation.RelationId,
                DeleteMessage m => m.Relation.RelationId,
                _ => 0u,
            };
            var relation = _relations[relationId];
            if (relation.Mapping is not { } mapping)
            {
                await ConsumeAsync(message, cancellationToken).ConfigureAwait(false);
                feed._metrics.AddChanges(1, "ignored");
                return new FeedEvent(FeedEventKind.Ignored, transaction, index, 0);
            }

            PostgresRow? old = null;
            PostgresRow? row = null;
            switch (message)
            {
                case InsertMessage insert:
                    row = await ReadRowAsync(relation, insert.NewRow, keyOnly: false, null, cancellationToken).ConfigureAwait(false);
                    break;
                case IndexUpdateMessage update:
                    old = await ReadRowAsync(relation, update.Key, keyOnly: true, null, cancellationToken).ConfigureAwait(false);
                    row = await ReadRowAsync(relation, update.NewRow, keyOnly: false, null, cancellationToken).ConfigureAwait(false);
                    break;
                case FullUpdateMessage update:
                    old = await ReadRowAsync(relation, update.OldRow, keyOnly: false, null, cancellationToken).ConfigureAwait(false);
                    row = await ReadRowAsync(relation, update.NewRow, keyOnly: false, old, cancellationToken).ConfigureAwait(false);
                    break;
                case UpdateMessage update:
                    row = await ReadRowAsync(relation, update.NewRow, keyOnly: false, null, cancellationToken).ConfigureAwait(false);
                    break;
                case KeyDeleteMessage delete:
                    old = await ReadRowAsync(relation, delete.Key, keyOnly: true, null, cancellationToken).ConfigureAwait(false);
                    break;
                case FullDeleteMessage delete:
                    old = await ReadRowAsync(relation, delete.OldRow, keyOnly: false, null, cancellationToken).ConfigureAwait(false);
                    break;
            }

            try
            {
                FeedChange? previous = null;
                EntityKey? oldKey = old is null ? null : new EntityKey(mapping.Collection, mapping.Id(old));
                if (row is null)
                {
                    return new FeedEvent(FeedEventKind.Change, transaction, index, 0, FeedChange.Delete(oldKey!.Value));
                }

                var key = new EntityKey(mapping.Collection, mapping.Id(row));
                if (oldKey is { } before && before != key)
                {
                    previous = FeedChange.Delete(before);
                }

                var entity = mapping.Map(key, row);
                if (entity is not null && entity.Key != key)
                {
                    throw new InvalidOperationException($"The mapping returned an entity with key {SafeText.Quote(entity.Key)}; it must keep the key it was given ({SafeText.Quote(key)}).");
                }

                return new FeedEvent(FeedEventKind.Change, transaction, index, 0, entity is null ? FeedChange.Delete(key) : FeedChange.Upsert(entity), previous);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new PostgresChangeFeedException(
                    $"The mapping of table {mapping.Table} failed on row change {index} of the transaction committed at {new NpgsqlLogSequenceNumber(transaction)}: {SafeText.Text(ex.Message)} Fix the mapping and restart the feed; it resumes at this change.",
                    feed.Name,
                    "map",
                    ex);
            }
        }

        private static async ValueTask ConsumeAsync(PgOutputReplicationMessage message, CancellationToken cancellationToken)
        {
            // Values of a tuple must be read in order before the next message; reading them is the simplest way to skip.
            ReplicationTuple? tuple = message switch
            {
                InsertMessage m => m.NewRow,
                UpdateMessage m => m.NewRow,
                KeyDeleteMessage m => m.Key,
                FullDeleteMessage m => m.OldRow,
                _ => null,
            };
            if (message is IndexUpdateMessage index)
            {
                await foreach (var value in index.Key.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    _ = value.Kind;
                }
            }
            else if (message is FullUpdateMessage full)
            {
                await foreach (var value in full.OldRow.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    _ = value.Kind;
                }
            }

            if (tuple is not null)
            {
                await foreach (var value in tuple.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    _ = value.Kind;
                }
            }
        }

        private RelationInfo Describe(RelationMessage relation)
        {
            var columns = new PostgresColumn[relation.Columns.Count];
            var keys = new List<string>();
            for (var i = 0; i < columns.Length; i++)
            {
                var column = relation.Columns[i];
                var isKey = (column.Flags & RelationMessage.Column.ColumnFlags.PartOfKey) != 0;
                columns[i] = new PostgresColumn(column.ColumnName, column.DataTypeId, isKey);
                if (isKey)
                {
                    keys.Add(column.ColumnName);
                }
            }

            feed._mappings.TryGetValue((relation.Namespace, relation.RelationName), out var mapping);
            if (relation.ReplicaIdentity == RelationMessage.ReplicaIdentitySetting.AllColumns)
            {
                // Every column is flagged as key with REPLICA IDENTITY FULL: the primary key (read at start) names the row.
                keys.Clear();
                if (Volatile.Read(ref feed._keyColumns).TryGetValue((relation.Namespace, relation.RelationName), out var primary))
                {
                    keys.AddRange(primary);
                }
            }

            return new RelationInfo(mapping, relation.Namespace, relation.RelationName, columns, [.. keys]);
        }

        private static async ValueTask<PostgresRow> ReadRowAsync(RelationInfo relation, ReplicationTuple tuple, bool keyOnly, PostgresRow? old, CancellationToken cancellationToken)
        {
            var values = new object?[relation.Columns.Length];
            var i = 0;
            await foreach (var value in tuple.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                if (i < values.Length)
                {
                    var name = relation.Columns[i].Name;
                    values[i] = value.IsDBNull ? null
                        : value.IsUnchangedToastedValue ? (old is not null && old.Contains(name) && !old.IsUnchanged(name) ? old[name] : PostgresRow.Unchanged.Value)
                        : await value.Get<object>(cancellationToken).ConfigureAwait(false);
                }

                i++;
            }

            if (!keyOnly)
            {
                return new PostgresRow(relation.Schema, relation.Name, relation.Columns, values, relation.KeyColumns, keyOnly: false);
            }

            // A key tuple carries every column, the non-key ones as nulls: keep only the key columns.
            var keyColumns = new PostgresColumn[relation.KeyColumns.Length];
            var keyValues = new object?[keyColumns.Length];
            for (int c = 0, k = 0; c < relation.Columns.Length; c++)
            {
                if (relation.Columns[c].IsKey)
                {
                    keyColumns[k] = relation.Columns[c];
                    keyValues[k++] = values[c];
                }
            }

            return new PostgresRow(relation.Schema, relation.Name, keyColumns, keyValues, relation.KeyColumns, keyOnly: true);
        }
    }
}
