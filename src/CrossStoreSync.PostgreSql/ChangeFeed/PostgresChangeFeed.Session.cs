using System.Runtime.CompilerServices;
using System.Threading.Channels;
using CrossStoreSync.Model;
using CrossStoreSync.Sync;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

public sealed partial class PostgresChangeFeed
{
    /// <summary>What the stream reader hands to the batch writer, in stream order.</summary>
    private enum FeedEventKind
    {
        /// <summary>A row change to write (<c>Change</c>, and <c>Previous</c> for the old key of a key change).</summary>
        Change,

        /// <summary>A row change that produces nothing (TRUNCATE, a table not mapped); it still moves the position.</summary>
        Ignored,

        /// <summary>A transaction ended at <c>Lsn</c> (its end LSN): everything before is in earlier events.</summary>
        Commit,

        /// <summary>A heartbeat came back at <c>Lsn</c>: everything committed before it is in earlier events.</summary>
        Heartbeat,
    }

    private readonly record struct FeedEvent(FeedEventKind Kind, ulong Transaction, int Index, ulong Lsn, FeedChange? Change = null, FeedChange? Previous = null);

    /// <summary>A followed relation as its last relation message described it.</summary>
    private sealed record RelationInfo(PostgresTableMapping? Mapping, string Schema, string Name, PostgresColumn[] Columns, string[] KeyColumns);

    /// <summary>
    /// One replication connection's life: a reader turns the stream into events (bounded channel), a writer writes
    /// them in batches through the engine with the position, a status loop saves and confirms the position, a
    /// heartbeat loop emits heartbeats. The first failure ends the session; the feed reconnects from the saved position.
    /// </summary>
    private sealed partial class Session(PostgresChangeFeed feed, LogicalReplicationConnection replication, PostgresFeedPosition start)
    {
        private readonly Dictionary<uint, RelationInfo> _relations = [];
        private readonly Dictionary<EntityKey, FeedChange> _batch = [];
        private readonly PostgresFeedPosition _start = start;
        private PostgresFeedPosition _saved = start;
        private PostgresFeedPosition _handled = start;

        public async Task RunAsync(CancellationToken stoppingToken)
        {
            using var session = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var channel = Channel.CreateBounded<FeedEvent>(new BoundedChannelOptions(feed._options.BatchSize * 2)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
            replication.SetReplicationStatus(new NpgsqlLogSequenceNumber(_start.Confirmable));
            var tasks = new List<Task>
            {
                ReadAsync(channel.Writer, session.Token),
                WriteAsync(channel.Reader, session.Token),
                StatusLoopAsync(session.Token),
            };
            if (feed._options.HeartbeatInterval > TimeSpan.Zero)
            {
                tasks.Add(HeartbeatLoopAsync(session.Token));
            }

            var first = await Task.WhenAny(tasks).ConfigureAwait(false);
            await session.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!first.IsFaulted)
            {
                // The others stopped because the session ended.
            }
            catch (Exception) when (first.IsFaulted)
            {
                // Reported below: the first failure is the cause.
            }

            if (first.IsFaulted)
            {
                await first.ConfigureAwait(false);
            }

            stoppingToken.ThrowIfCancellationRequested();
            throw new ChannelClosedException("The replication stream ended; reconnecting.");
        }

        private async Task ReadAsync(ChannelWriter<FeedEvent> events, CancellationToken cancellationToken)
        {
            var options = new PgOutputReplicationOptions(feed._options.PublicationName, PgOutputProtocolVersion.V1, binary: true, streamingMode: null, messages: true, twoPhase: null);
            var slot = new PgOutputReplicationSlot(feed._options.SlotName);
            var from = _start.Confirmable == 0 ? (NpgsqlLogSequenceNumber?)null : new NpgsqlLogSequenceNumber(_start.Confirmable);
            ulong transaction = 0;
            var index = 0;
            var skipped = 0;
            await foreach (var message in replication.StartReplication(slot, options, cancellationToken, from).ConfigureAwait(false))
            {
                switch (message)
                {
                    case BeginMessage begin:
                        transaction = (ulong)begin.TransactionFinalLsn;
                        index = 0;
                        break;
                    case RelationMessage relation:
                        _relations[relation.RelationId] = Describe(relation);
                        break;
                    case InsertMessage or UpdateMessage or DeleteMessage or TruncateMessage:
                        index++;
                        if (_start.IsHandled(transaction, index))
                        {
                            skipped++;
                            continue;
                        }

                        await events.WriteAsync(await ToEventAsync(message, transaction, index, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                        break;
                    case CommitMessage commit:
                        if (skipped > 0)
                        {
                            feed._metrics.AddChanges(skipped, "skipped");
                            PostgresChangeFeedLog.Skipped(feed._logger, feed.Name, skipped);
                            skipped = 0;
                        }

                        await events.WriteAsync(new FeedEvent(FeedEventKind.Commit, transaction, index, (ulong)commit.TransactionEndLsn), cancellationToken).ConfigureAwait(false);
                        break;
                    case LogicalDecodingMessage { Prefix: HeartbeatPrefix, Flags: 0 } heartbeat:
                        await events.WriteAsync(new FeedEvent(FeedEventKind.Heartbeat, 0, 0, (ulong)heartbeat.MessageLsn), cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
        }

        private async Task WriteAsync(ChannelReader<FeedEvent> events, CancellationToken cancellationToken)
        {
            var batchSize = feed._options.BatchSize;
            while (await events.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var next = _handled;
                var raw = 0;
                var heartbeats = 0;
                while (raw < batchSize && events.TryRead(out var e))
                {
                    switch (e.Kind)
                    {
                        case FeedEventKind.Change:
                            if (e.Previous is { } previous)
                            {
                                _batch[previous.Key] = previous;
                            }

                            _batch[e.Change!.Key] = e.Change;
                            raw++;
                            next = next with { Transaction = e.Transaction, Index = e.Index };
                            break;
                        case FeedEventKind.Ignored:
                            next = next with { Transaction = e.Transaction, Index = e.Index };
                            break;
                        case FeedEventKind.Commit:
                        case FeedEventKind.Heartbeat:
                            heartbeats += e.Kind == FeedEventKind.Heartbeat ? 1 : 0;
                            if (e.Lsn > next.Confirmable)
                            {
                                next = next with { Confirmable = e.Lsn };
                            }

                            break;
                    }
                }

                await feed._positionGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    if (_batch.Count > 0)
                    {
                        var started = feed._time.GetTimestamp();
                        var ticket = await feed._writer.WriteAsync([.. _batch.Values], new FeedPosition(feed.Name, next.ToString()), cancellationToken).ConfigureAwait(false);
                        feed._metrics.RecordBatch(feed._time.GetElapsedTime(started).TotalSeconds);
                        feed._metrics.AddChanges(raw, "written");
                        Volatile.Write(ref feed._lastTicket, new StrongBox<SyncTicket>(ticket));
                        PostgresChangeFeedLog.BatchWritten(feed._logger, feed.Name, _batch.Count, next.ToString());
                        _saved = next;
                        replication.SetReplicationStatus(new NpgsqlLogSequenceNumber(next.Confirmable));
                        feed._confirmed.Advance(next.Confirmable);
                    }

                    _handled = next;
                }
                finally
                {
                    feed._positionGate.Release();
                    _batch.Clear();
                }

                for (var i = 0; i < heartbeats; i++)
                {
                    feed._metrics.Heartbeat();
                }

                feed._handled.Advance(next.Confirmable);
            }
        }

        /// <summary>Saves a position that moved without a write (commits of skipped changes, heartbeats), then confirms it.</summary>
        private async Task StatusLoopAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                await Task.Delay(feed._options.StatusInterval, feed._time, cancellationToken).ConfigureAwait(false);
                await feed._positionGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var handled = _handled;
                    if (handled == _saved)
                    {
                        continue;
                    }

                    // Saved before it is confirmed: the server never holds a position the feed could not resume from.
                    await feed._writer.SavePositionAsync(new FeedPosition(feed.Name, handled.ToString()), cancellationToken).ConfigureAwait(false);
                    _saved = handled;
                    replication.SetReplicationStatus(new NpgsqlLogSequenceNumber(handled.Confirmable));
                    PostgresChangeFeedLog.Confirmed(feed._logger, feed.Name, new NpgsqlLogSequenceNumber(handled.Confirmable).ToString());
                    feed._confirmed.Advance(handled.Confirmable);
                }
                finally
                {
                    feed._positionGate.Release();
                }
            }
        }

        private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
        {
            var interval = feed._options.HeartbeatInterval;
            while (true)
            {
                var wake = Volatile.Read(ref feed._heartbeatNow).Task;
                await Task.WhenAny(Task.Delay(interval, feed._time, cancellationToken), wake).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                Interlocked.Exchange(ref feed._heartbeatNow, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                try
                {
                    await using var command = feed._dataSource.CreateCommand("SELECT pg_logical_emit_message(false, $1, $2)");
                    command.Parameters.Add(new NpgsqlParameter { Value = HeartbeatPrefix });
                    command.Parameters.Add(new NpgsqlParameter { Value = feed._options.SlotName });
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (NpgsqlException ex)
                {
                    // A missed heartbeat only delays the slot's advance; the stream itself reports real failures.
                    PostgresChangeFeedLog.HeartbeatFailed(feed._logger, feed.Name, ex);
                }
            }
        }
    }
}
