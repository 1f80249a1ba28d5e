using System.Threading.Channels;
using CrossStoreSync.Errors;
using Microsoft.Data.Sqlite;

namespace CrossStoreSync.Sqlite.Internal;

/// <summary>
/// One SQLite database file in WAL mode with a single writer that group-commits: concurrent write operations are
/// queued, run one after another inside one transaction (each in its own savepoint, so one failing operation rolls
/// back alone), and share one fsync'd commit. Reads use separate pooled connections and never block the writer.
/// </summary>
internal sealed class SqliteDatabase : IAsyncDisposable
{
    private const int QueueCapacity = 8192;

    // Pages moved per incremental-vacuum step: each step runs inside one group commit, so writers never wait behind
    // more than this much page copying (2,000 × 4 KiB = 8 MiB).
    private const int VacuumPagesPerStep = 2000;

    // The WAL file is cut back to this size after a checkpoint; without a limit it keeps its largest size for good.
    private const long JournalSizeLimitBytes = 64L * 1024 * 1024;
    private readonly Channel<WriteOperation> _queue;
    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly Task _writerLoop;
    private readonly int _maxGroup;
    private int _disposed;
    private long _commits;

    public SqliteDatabase(string path, bool durable, int maxGroup = 256)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        _maxGroup = maxGroup;
        var builder = new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 };
        _readConnectionString = builder.ToString();
        _writer = new SqliteConnection(builder.ToString());
        _writer.Open();
        ConvertedToIncrementalVacuum = EnsureIncrementalVacuum(_writer);

        // WAL lets readers run beside the single writer; synchronous=FULL makes every commit durable before the
        // writers it carries are acknowledged (NORMAL only loses the tail on power loss, never on a process crash).
        Execute(_writer, "PRAGMA journal_mode=WAL;");
        Execute(_writer, durable ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;");
        Execute(_writer, "PRAGMA busy_timeout=30000;");
        Execute(_writer, $"PRAGMA journal_size_limit={JournalSizeLimitBytes};");
        _queue = Channel.CreateBounded<WriteOperation>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _writerLoop = Task.Factory.StartNew(RunWriter, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Path { get; }

    /// <summary>True when this open converted an existing file to incremental vacuum (a one-time full VACUUM).</summary>
    public bool ConvertedToIncrementalVacuum { get; }

    /// <summary>Transactions committed so far; with group commit it grows slower than the number of write operations.</summary>
    public long CommitCount => Interlocked.Read(ref _commits);


    /// <summary>Runs <paramref name="work"/> on the writer inside the current group transaction; completes after the group commits.</summary>
    /// <remarks>
    /// Once queued, an operation runs even if <paramref name="cancellationToken"/> fires later: cancellation only
    /// applies while waiting for queue space, so a cancelled caller never leaves a half-known outcome behind.
    /// </remarks>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var operation = new WriteOperation<T>(work);
        await _queue.Writer.WriteAsync(operation, cancellationToken).ConfigureAwait(false);
        return await operation.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Gives the file's free pages back to the file system (incremental vacuum), a bounded number per group commit so
    /// writers keep going in between. Rows deleted by log truncation or tombstone purges free pages; without this the
    /// file keeps its peak size and only reuses them. Returns the pages released.
    /// </summary>
    public async Task<long> ReleaseFreePagesAsync(CancellationToken cancellationToken)
    {
        long released = 0;
        while (true)
        {
            var (before, after) = await WriteAsync((c, t) =>
            {
                var free = FreePages(c, t);
                if (free > 0)
                {
                    Execute(c, $"PRAGMA incremental_vacuum({VacuumPagesPerStep});", t);
                }

                return (free, free > 0 ? FreePages(c, t) : 0);
            }, cancellationToken).ConfigureAwait(false);
            released += Math.Max(0, before - after);
            if (after == 0 || after >= before)
            {
                return released;
            }
        }
    }

    /// <summary>The file's size in bytes, write-ahead log included.</summary>
    public long FileBytes()
    {
        var wal = new FileInfo(Path + "-wal");
        return new FileInfo(Path).Length + (wal.Exists ? wal.Length : 0);
    }

    /// <summary>Opens a pooled read connection.</summary>
    public SqliteConnection OpenRead()
    {
        var connection = new SqliteConnection(_readConnectionString);
        connection.Open();
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _writerLoop.ConfigureAwait(false);
        SqliteConnection.ClearPool(_writer);
        await _writer.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR and SQLITE_FULL can pass; everything else is permanent.</summary>
    internal static bool IsTransient(SqliteException exception) => exception.SqliteErrorCode is 5 or 6 or 10 or 13;

    internal static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Makes the file use incremental vacuum: set on a new file before its first table, so it is free; an existing file
    /// needs one full VACUUM to switch (it rewrites the file; documented in the README). Returns whether it converted.
    /// </summary>
    private static bool EnsureIncrementalVacuum(SqliteConnection connection)
    {
        const long Incremental = 2;
        Execute(connection, "PRAGMA auto_vacuum=INCREMENTAL;");
        if (Scalar(connection, null, "PRAGMA auto_vacuum") == Incremental)
        {
            return false;
        }

        Execute(connection, "VACUUM;");
        return true;
    }

    private static long FreePages(SqliteConnection connection, SqliteTransaction transaction) => Scalar(connection, transaction, "PRAGMA freelist_count");

    private static long Scalar(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task RunWriter()
    {
        var group = new List<WriteOperation>(_maxGroup);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            group.Clear();
            while (group.Count < _maxGroup && reader.TryRead(out var operation))
            {
                group.Add(operation);
            }

            RunGroup(group);
        }
    }

    private void RunGroup(List<WriteOperation> group)
    {
        SqliteTransaction transaction;
        try
        {
            transaction = _writer.BeginTransaction(deferred: false);
        }
        catch (SqliteException ex)
        {
            FailAll(group, ex);
            return;
        }

        using (transaction)
        {
            var succeeded = 0;
            foreach (var operation in group)
            {
                transaction.Save("op");
                try
                {
                    operation.Run(_writer, transaction);
                    transaction.Release("op");
                    succeeded++;
                }
                catch (Exception ex)
                {
                    // Only this operation's statements are undone; the rest of the group still commits.
                    transaction.Rollback("op");
                    transaction.Release("op");
                    operation.Fail(ex);
                }
            }

            try
            {
                if (succeeded > 0)
                {
                    transaction.Commit();
                }
                else
                {
                    transaction.Rollback();
                }
            }
            catch (Exception ex)
            {
                FailAll(group, ex);
                return;
            }
        }

        Interlocked.Increment(ref _commits);
        foreach (var operation in group)
        {
            operation.Complete();
        }
    }

    private void FailAll(List<WriteOperation> group, Exception ex)
    {
        var error = new SyncStoreException($"SQLite commit to {SafeText.Quote(Path)} failed: {SafeText.Text(ex.Message)}", isTransient: ex is SqliteException sqlite && IsTransient(sqlite), System.IO.Path.GetFileName(Path), null, "commit", ex);
        foreach (var operation in group)
        {
            operation.Fail(error);
        }
    }

    private abstract class WriteOperation
    {
        public abstract void Run(SqliteConnection connection, SqliteTransaction transaction);

        public abstract void Fail(Exception exception);

        public abstract void Complete();
    }

    private sealed class WriteOperation<T>(Func<SqliteConnection, SqliteTransaction, T> work) : WriteOperation
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;
        private bool _failed;

        public Task<T> Task => _completion.Task;

        public override void Run(SqliteConnection connection, SqliteTransaction transaction) => _result = work(connection, transaction);

        public override void Fail(Exception exception)
        {
            _failed = true;
            _completion.TrySetException(exception);
        }

        public override void Complete()
        {
            if (!_failed)
            {
                _completion.TrySetResult(_result);
            }
        }
    }
}
