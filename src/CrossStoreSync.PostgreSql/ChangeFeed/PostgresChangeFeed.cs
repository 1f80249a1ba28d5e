using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using CrossStoreSync.Errors;
using CrossStoreSync.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Npgsql.Replication;
using NpgsqlTypes;
using Polly;
using Polly.Retry;

namespace CrossStoreSync.PostgreSql.ChangeFeed;

/// <summary>
/// CDC for applications that write their own PostgreSQL tables: follows the tables through logical replication
/// (<c>pgoutput</c>), maps each row change to an entity change and writes it through the engine
/// (<see cref="IChangeFeedWriter"/>), so it reaches the source of truth and every replica.
/// </summary>
/// <remarks>
/// <para>
/// Each batch is written together with the feed's position (the commit LSN of the transaction it reached and how many
/// of that transaction's row changes are handled), so a large transaction can span several batches. After a restart
/// the server replays from the slot's confirmed LSN and the feed skips what the saved position says is handled: a
/// crash neither loses nor duplicates a change (with a log coupled to the source). The feed confirms an LSN to the
/// server only once everything before it is durably written.
/// </para>
/// <para>
/// Heartbeats (<see cref="PostgresChangeFeedOptions.HeartbeatInterval"/>) keep the slot advancing while the followed
/// tables are idle, so it does not hold WAL back.
/// </para>
/// <para>
/// When the feed creates its slot it first copies the rows the tables already hold
/// (<see cref="PostgresChangeFeedOptions.CopyExistingRows"/>).
/// </para>
/// <para>
/// If the slot was dropped or lost its WAL while the feed was down, start fails with
/// <see cref="PostgresReplicationSlotLostException"/> rather than silently skipping changes; see that type for the
/// recovery. TRUNCATE is not replicated (logged; a consistency check and repair finds the orphans). Runs as a hosted
/// service when registered with <c>AddPostgresChangeFeed</c>; the public members are thread-safe.
/// </para>
/// </remarks>
public sealed partial class PostgresChangeFeed : BackgroundService
{
    private const string HeartbeatPrefix = "crossstoresync.heartbeat";
    private readonly IChangeFeedWriter _writer;
    private readonly PostgresChangeFeedOptions _options;
    private readonly Dictionary<(string Schema, string Name), PostgresTableMapping> _mappings = [];
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly PostgresChangeFeedMetrics _metrics;
    private readonly NpgsqlDataSource _dataSource;
    private readonly SemaphoreSlim _positionGate = new(1, 1);
    private readonly LsnWaiters _handled = new();
    private readonly LsnWaiters _confirmed = new();
    private TaskCompletionSource _heartbeatNow = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Dictionary<(string Schema, string Name), string[]> _keyColumns = [];
    private PostgresFeedPosition? _prepared;
    private (LogicalReplicationConnection Connection, string Snapshot)? _exported;
    private StrongBox<SyncTicket>? _lastTicket;

    /// <summary>Creates a feed. It does nothing until started.</summary>
    /// <param name="writer">The engine's feed entry point (registered by <c>AddCrossStoreSync</c>).</param>
    /// <param name="options">The options; validated here.</param>
    /// <param name="meterFactory">Creates the <c>CrossStoreSync</c> meter for the feed's instruments.</param>
    /// <param name="logger">The logger, or null.</param>
    /// <param name="timeProvider">The time source, or null for the system clock.</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and quotes the value.</exception>
    public PostgresChangeFeed(IChangeFeedWriter writer, PostgresChangeFeedOptions options, IMeterFactory meterFactory, ILogger<PostgresChangeFeed>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(meterFactory);
        options.Validate();
        _writer = writer;
        _options = options;
        foreach (var mapping in options.Tables)
        {
            _mappings[(mapping.Schema, mapping.Name)] = mapping;
        }

        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _metrics = new PostgresChangeFeedMetrics(meterFactory, options.FeedName, () => (long)_confirmed.Value);
        _dataSource = NpgsqlDataSource.Create(options.ConnectionString);
    }

    /// <summary>The feed's name, under which its position is saved.</summary>
    public string Name => _options.FeedName;

    /// <summary>The LSN up to which every change of the followed tables is handled (written through the engine, or skipped as not followed).</summary>
    public NpgsqlLogSequenceNumber HandledLsn => new(_handled.Value);

    /// <summary>The last LSN the feed saved and handed to the server as confirmed (flushed).</summary>
    public NpgsqlLogSequenceNumber ConfirmedLsn => new(_confirmed.Value);

    /// <summary>
    /// Waits until every change committed before <paramref name="lsn"/> is handled (for example the value of
    /// <c>pg_current_wal_lsn()</c> after a write). Asks for a heartbeat at once, so an LSN past the last followed
    /// change is reached without waiting for the next heartbeat.
    /// </summary>
    /// <returns>The ticket of the feed's last write through the engine (pass it to <see cref="ISyncManager.WaitForSyncAsync"/>), or null when the feed wrote nothing yet.</returns>
    /// <exception cref="TimeoutException"><paramref name="timeout"/> passed first.</exception>
    /// <exception cref="PostgresChangeFeedException">The feed stopped on an error.</exception>
    public async Task<SyncTicket?> WaitForLsnAsync(NpgsqlLogSequenceNumber lsn, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var reached = _handled.WaitAsync((ulong)lsn);
        if (!reached.IsCompleted)
        {
            Volatile.Read(ref _heartbeatNow).TrySetResult();
        }

        await WaitAsync(reached, lsn, "handled", timeout, cancellationToken).ConfigureAwait(false);
        return Volatile.Read(ref _lastTicket) is { } ticket ? ticket.Value : null;
    }

    /// <summary>Waits until the feed has saved <paramref name="lsn"/> (or later) and set it as the confirmed position it reports to the server.</summary>
    /// <exception cref="TimeoutException"><paramref name="timeout"/> passed first.</exception>
    /// <exception cref="PostgresChangeFeedException">The feed stopped on an error.</exception>
    public Task WaitForConfirmedAsync(NpgsqlLogSequenceNumber lsn, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var reached = _confirmed.WaitAsync((ulong)lsn);
        if (!reached.IsCompleted)
        {
            Volatile.Read(ref _heartbeatNow).TrySetResult();
        }

        return WaitAsync(reached, lsn, "confirmed", timeout, cancellationToken);
    }

    /// <summary>Checks the options, the followed tables, the publication and the slot before the host reports started.</summary>
    /// <exception cref="PostgresReplicationSlotLostException">The slot was dropped, lost WAL or moved without this feed.</exception>
    /// <exception cref="PostgresChangeFeedException">A followed table is missing or has no replica identity, or the slot is not a pgoutput slot of this database.</exception>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _prepared = await PrepareAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var retry = new ResiliencePipelineBuilder { TimeProvider = _time }.AddRetry(new RetryStrategyOptions
        {
            // A session that fails transiently restarts from the saved position: nothing is lost or written twice.
            ShouldHandle = new PredicateBuilder()
                .Handle<NpgsqlException>(IsTransient)
                .Handle<IOException>()
                .Handle<ChannelClosedException>()
                .Handle<SyncStoreException>(e => e.IsTransient)
                .Handle<SourceUnavailableException>(),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            Delay = _options.ReconnectDelay,
            MaxDelay = TimeSpan.FromSeconds(30),
            UseJitter = true,
            OnRetry = args =>
            {
                _metrics.Reconnect();
                PostgresChangeFeedLog.Reconnecting(_logger, Name, args.RetryDelay, args.Outcome.Exception!);
                return default;
            },
        }).Build();

        try
        {
            await retry.ExecuteAsync(RunSessionAsync, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (Exception ex)
        {
            var fault = ex as PostgresChangeFeedException ?? new PostgresChangeFeedException($"The change feed {Name} stopped: {SafeText.Text(ex.Message)}", Name, "stream", ex);
            if (fault is PostgresReplicationSlotLostException lost)
            {
                PostgresChangeFeedLog.SlotLost(_logger, Name, lost.SlotName, lost.Reason);
            }

            PostgresChangeFeedLog.Stopped(_logger, Name, SafeText.Text(fault.Message), ex);
            _handled.Fail(fault);
            _confirmed.Fail(fault);
            throw fault;
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        DisposeExportedAsync().AsTask().GetAwaiter().GetResult();
        _dataSource.Dispose();
        _positionGate.Dispose();
        base.Dispose();
    }

    private static bool IsTransient(NpgsqlException exception) => exception switch
    {
        // 55006: the slot is still active for the connection of a process that just died; 57P01: the server is
        // shutting down; 42704: the slot vanished while streaming — the next session's check reports it as lost.
        PostgresException { SqlState: "55006" or "57P01" or "42704" } => true,
        _ => exception.IsTransient || exception.InnerException is IOException or TimeoutException,
    };

    private async Task WaitAsync(Task reached, NpgsqlLogSequenceNumber lsn, string what, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await reached.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"The change feed {Name} has {what} up to {new NpgsqlLogSequenceNumber(what == "handled" ? _handled.Value : _confirmed.Value)}, not {lsn}, after {timeout}.", ex);
        }
    }

    private async ValueTask RunSessionAsync(CancellationToken stoppingToken)
    {
        var start = _prepared ?? await PrepareAsync(stoppingToken).ConfigureAwait(false);
        _prepared = null;
        if (start.CopyPending)
        {
            start = await CopyExistingRowsAsync(start, stoppingToken).ConfigureAwait(false);
        }

        await using var replication = new LogicalReplicationConnection(_options.ConnectionString)
        {
            WalReceiverStatusInterval = _options.StatusInterval,
        };
        await replication.Open(stoppingToken).ConfigureAwait(false);

        var session = new Session(this, replication, start);
        await session.RunAsync(stoppingToken).ConfigureAwait(false);
    }
}
