using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.Stores;
using Npgsql;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>
/// A document store in PostgreSQL: one table per collection in <see cref="Schema"/>, holding each entity's document
/// (<c>jsonb</c>, plus the exact bytes written), vector (<c>real[]</c>), edges and the <c>_sync</c> columns (version,
/// hash, bucket, deleted, origin), with an index on (bucket, id). Deletes leave a versioned tombstone.
/// </summary>
/// <remarks>
/// <para>
/// Writes are one version-guarded <c>INSERT … ON CONFLICT (id) DO UPDATE … WHERE version &lt; excluded.version</c>
/// per collection over arrays of the batch's rows (<c>unnest</c>), all sent in one round trip, so replaying a change
/// or applying an older one changes nothing. Rows are written in id order so that concurrent batches lock rows in
/// the same order.
/// </para>
/// <para>
/// For replication between nodes each row also keeps its causal history, <c>vv jsonb</c> (node id → version; NULL while
/// only this node wrote the entity), and <c>from_node</c> (the node a received state came from; NULL for a write made
/// here). A write made here folds the replaced state's version into <c>vv</c> in the same statement.
/// </para>
/// <para>
/// <c>document</c> is the document as <c>jsonb</c>, for applications to query and index; <c>document_raw</c> keeps
/// the exact bytes the content hash covers (jsonb reorders keys and reprints numbers). Reads return the exact bytes
/// while <c>document</c> still equals them as JSON, and <c>document</c>'s own rendering once it was edited outside the
/// library, so that such an edit shows up as a projection hash that differs from the recorded one. The database must
/// use the UTF8 encoding.
/// </para>
/// <para>
/// A collection's table is created by <see cref="InitializeAsync"/>, or on the first write to a collection that was
/// not passed to it. All DDL takes a transaction-level advisory lock (<see cref="PostgresSql.SchemaLockKey"/>) so that
/// several processes starting together do not collide in the catalogs.
/// </para>
/// <para>
/// Thread-safe. Failures are <see cref="SyncStoreException"/>s whose <see cref="SyncStoreException.IsTransient"/>
/// follows the SQLSTATE (serialization failures, deadlocks, lost connections and an overloaded or restarting server
/// are transient). Cancellation passes through as <see cref="OperationCanceledException"/>.
/// </para>
/// </remarks>
public sealed partial class PostgresDocumentStore : IDocumentStore, ITombstoneStore
{
    private const int RowsPerStatement = 1000;

    private const string UpsertSql = """
        INSERT INTO {0} AS t (id, version, hash, bucket, deleted, origin, document, document_raw, vector, edges)
        SELECT u.id, u.version, u.hash, u.bucket, u.deleted, u.origin, convert_from(u.raw, 'UTF8')::jsonb, u.raw,
               CASE WHEN u.vlen > 0 THEN ($7::real[])[u.voff:u.voff + u.vlen - 1] END, u.edges
        FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::boolean[], $6::text[], $8::bytea[], $9::integer[], $10::integer[], $11::bytea[])
             AS u(id, version, hash, bucket, deleted, origin, raw, voff, vlen, edges)
        ON CONFLICT (id) DO UPDATE SET
            version = excluded.version, hash = excluded.hash, bucket = excluded.bucket, deleted = excluded.deleted,
            origin = excluded.origin, document = excluded.document, document_raw = excluded.document_raw,
            vector = excluded.vector, edges = excluded.edges,
            vv = CASE WHEN t.vv IS NULL AND (t.version & 255) = (excluded.version & 255) THEN NULL
                 ELSE coalesce(t.vv, '{{}}') || jsonb_build_object((t.version & 255)::text, t.version) END,
            from_node = NULL
        WHERE t.version < excluded.version
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly DocumentTables _tables;

    /// <summary>Creates a store over a data source. Nothing is sent to the server until the first call.</summary>
    /// <param name="dataSource">The data source (connection pool); not disposed by the store.</param>
    /// <param name="name">The store's name (cursors and dead letters are keyed by it). <value>Default <c>documents</c>.</value></param>
    /// <param name="schema">The schema holding the collection tables: a plain identifier (letters, digits, <c>_</c>).
    /// <value>Default <c>crossstoresync</c>.</value></param>
    /// <exception cref="ArgumentNullException"><paramref name="dataSource"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or <paramref name="schema"/> is not a valid identifier.</exception>
    public PostgresDocumentStore(NpgsqlDataSource dataSource, string name = "documents", string schema = PostgresNames.DefaultSchema)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        PostgresSql.ValidateIdentifier(schema, nameof(schema));
        _dataSource = dataSource;
        Name = name;
        Schema = schema;
        _tables = new DocumentTables(schema);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public StoreKind Kind => StoreKind.Document;

    /// <summary>The schema holding the collection tables.</summary>
    public string Schema { get; }

    /// <summary>The schema-qualified, quoted name of a collection's table (for tests and diagnostics).</summary>
    internal string TableOf(string collection) => _tables.Qualified(collection);

    /// <inheritdoc />
    /// <remarks>Creates the schema and every collection's table and index if missing, in one transaction.</remarks>
    /// <exception cref="SyncStoreException">The server failed; see <see cref="SyncStoreException.IsTransient"/>.</exception>
    public async ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(collections);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await CreateTablesAsync(connection, null, collections, cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "initialize", null);
        }
    }

    /// <summary>
    /// Creates the schema and the tables of <paramref name="collections"/> if missing (idempotent) and records their
    /// vector dimensions. With a <paramref name="transaction"/>, runs inside it and neither commits nor rolls back; the
    /// advisory DDL lock is then held until the caller's transaction ends. Without one, runs in its own transaction.
    /// </summary>
    /// <exception cref="ArgumentException">A collection name is not valid.</exception>
    /// <exception cref="NpgsqlException">The server failed (not translated: the caller owns the transaction).</exception>
    internal async Task CreateTablesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(collections);
        var names = new List<string>(collections.Count);
        foreach (var collection in collections)
        {
            ArgumentNullException.ThrowIfNull(collection, nameof(collections));
            EntityKey.ValidateCollection(collection.Name, nameof(collections));
            names.Add(collection.Name);
        }

        foreach (var collection in collections)
        {
            _tables.Define(collection);
        }

        if (transaction is not null)
        {
            await _tables.CreateAsync(connection, transaction, names, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using (var own = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await _tables.CreateAsync(connection, own, names, cancellationToken).ConfigureAwait(false);
            await own.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        _tables.Remember(names);
    }

    /// <inheritdoc />
    /// <exception cref="SyncStoreException">A change is invalid for this store (permanent), or the server failed.</exception>
    public async ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0)
        {
            return;
        }

        var groups = Prepare(changes);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await WriteAsync(connection, transaction, groups, remember: true, reportRefused: false, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable && attempt == 0)
            {
                // A table this process had seen is gone (dropped outside the library): forget and create it again.
                ForgetAll(groups);
            }
            catch (NpgsqlException ex)
            {
                throw Translate(ex, "apply", changes.Count == 1 ? changes[0].Key : null);
            }
        }
    }

    /// <summary>
    /// Applies changes inside a caller's open transaction, so that a change log can append its entries in the same
    /// transaction (transactional outbox). Never commits or rolls back. Every change is validated before anything is
    /// sent, so an invalid change leaves the transaction usable; a server error leaves it aborted and the caller must
    /// roll back (or roll back to a savepoint it took before the call).
    /// </summary>
    /// <param name="connection">The caller's open connection.</param>
    /// <param name="transaction">The caller's transaction on <paramref name="connection"/>.</param>
    /// <param name="changes">The changes; keys should be distinct (for a repeated key the newest version is applied).</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <exception cref="SyncStoreException">A change is invalid (permanent), or the server failed (transient per SQLSTATE).</exception>
    internal async Task ApplyWithinAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0)
        {
            return;
        }

        var groups = Prepare(changes);
        try
        {
            await WriteAsync(connection, transaction, groups, remember: false, reportRefused: false, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            // A table remembered from an earlier call is not there (its creating transaction rolled back, or it was
            // dropped). Forgotten now, so the caller's retry creates it.
            ForgetAll(groups);
            throw new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} found a collection table missing: {SafeText.Text(ex.MessageText)}. Retry the transaction.", true, Name, changes.Count == 1 ? changes[0].Key : null, "apply", ex);
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "apply", changes.Count == 1 ? changes[0].Key : null);
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException"><paramref name="collection"/> is not a valid collection name.</exception>
    /// <exception cref="SyncStoreException">The server failed.</exception>
    public async ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken)
    {
        EntityKey.ValidateCollection(collection, nameof(collection));
        ArgumentException.ThrowIfNullOrWhiteSpace(origin);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"DELETE FROM {_tables.Qualified(collection)} WHERE origin = $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = origin });
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresSql.UndefinedTable)
        {
            _tables.Forget(collection);
            return 0;
        }
        catch (NpgsqlException ex)
        {
            throw Translate(ex, "remove by origin", null);
        }
    }

    /// <summary>Validates every change, then groups them by collection (in ordinal order) in id order with one change per key.</summary>
    private List<CollectionRows> Prepare(IReadOnlyList<EntityChange> changes)
    {
        var byCollection = new Dictionary<string, Dictionary<string, EntityChange>>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            Validate(change);
            if (!byCollection.TryGetValue(change.Key.Collection, out var rows))
            {
                byCollection[change.Key.Collection] = rows = new Dictionary<string, EntityChange>(StringComparer.Ordinal);
            }

            // Keys in a batch are distinct by contract; if one repeats, the newest version is the one the guard keeps.
            if (!rows.TryGetValue(change.Key.Id, out var earlier) || earlier.Version < change.Version)
            {
                rows[change.Key.Id] = change;
            }
        }

        var groups = new List<CollectionRows>(byCollection.Count);
        foreach (var (collection, rows) in byCollection)
        {
            var ordered = new List<EntityChange>(rows.Values);
            ordered.Sort(static (a, b) => string.CompareOrdinal(a.Key.Id, b.Key.Id));
            groups.Add(new CollectionRows(collection, ordered));
        }

        // Collections in one order too, so that every transaction locks rows in (collection, id) order.
        groups.Sort(static (a, b) => string.CompareOrdinal(a.Collection, b.Collection));
        return groups;
    }

    private void Validate(EntityChange? change)
    {
        if (change is null)
        {
            throw new SyncStoreException($"Store {SafeText.Quote(Name)} received a null change.", false, Name, null, "apply");
        }

        if (change.Kind == ChangeKind.Upsert && change.Entity is null)
        {
            throw new SyncStoreException($"Upsert of '{(change.Key.IsDefault ? "(default key)" : change.Key.ToString())}' carries no entity.", false, Name, change.Key.IsDefault ? null : change.Key, "apply");
        }

        if (change.Key.IsDefault)
        {
            throw new SyncStoreException("A change has a default key.", false, Name, null, "apply");
        }

        if (change.Entity is not { } entity)
        {
            return;
        }

        if (!entity.Key.Equals(change.Key))
        {
            throw new SyncStoreException($"Upsert of {SafeText.Quote(change.Key)} carries the entity of {SafeText.Quote(entity.Key)}.", false, Name, change.Key, "apply");
        }

        if (entity.HasVector && _tables.TryGetDefinition(change.Key.Collection, out var definition))
        {
            if (definition.VectorDimension is not { } dimension)
            {
                throw new SyncStoreException($"Vector of {SafeText.Quote(change.Key)} has dimension {entity.Vector.Length}, but collection {SafeText.Quote(definition.Name)} in store {SafeText.Quote(Name)} is configured without vectors.", false, Name, change.Key, "apply");
            }

            if (entity.Vector.Length != dimension)
            {
                throw new SyncStoreException($"Vector of {SafeText.Quote(change.Key)} has dimension {entity.Vector.Length}; collection {SafeText.Quote(definition.Name)} in store {SafeText.Quote(Name)} expects {dimension}.", false, Name, change.Key, "apply");
            }
        }
    }

    /// <summary>Writes the groups in one round trip; with <paramref name="reportRefused"/>, returns the keys the version guard refused (else null).</summary>
    private async Task<HashSet<EntityKey>?> WriteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<CollectionRows> groups, bool remember, bool reportRefused, CancellationToken cancellationToken)
    {
        var collections = new List<string>(groups.Count);
        foreach (var group in groups)
        {
            collections.Add(group.Collection);
        }

        await _tables.EnsureAsync(connection, transaction, collections, remember, cancellationToken).ConfigureAwait(false);

        await using var batch = new NpgsqlBatch(connection, transaction);
        foreach (var group in groups)
        {
            // RETURNING lists the rows written: a row the guard refused is not among them.
            var sql = string.Format(System.Globalization.CultureInfo.InvariantCulture, UpsertSql, _tables.Qualified(group.Collection)) + (reportRefused ? "\nRETURNING id" : string.Empty);
            for (var start = 0; start < group.Changes.Count; start += RowsPerStatement)
            {
                var command = new NpgsqlBatchCommand(sql);
                UpsertRows.Bind(command.Parameters, group.Changes, start, Math.Min(group.Changes.Count, start + RowsPerStatement));
                batch.BatchCommands.Add(command);
            }
        }

        if (!reportRefused)
        {
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }

        var refused = new HashSet<EntityKey>();
        var written = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        foreach (var group in groups)
        {
            for (var start = 0; start < group.Changes.Count; start += RowsPerStatement)
            {
                written.Clear();
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    written.Add(reader.GetString(0));
                }

                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                for (var i = start; i < Math.Min(group.Changes.Count, start + RowsPerStatement); i++)
                {
                    if (!written.Contains(group.Changes[i].Key.Id))
                    {
                        refused.Add(group.Changes[i].Key);
                    }
                }
            }
        }

        return refused;
    }

    private void ForgetAll(List<CollectionRows> groups)
    {
        foreach (var group in groups)
        {
            _tables.Forget(group.Collection);
        }
    }

    private SyncStoreException Translate(NpgsqlException ex, string operation, EntityKey? key)
    {
        var detail = ex is PostgresException pg ? $"{pg.SqlState}: {SafeText.Text(pg.MessageText)}{(pg.TableName is { } table ? $" (table {SafeText.Quote(table)})" : string.Empty)}" : SafeText.Text(ex.Message);
        return new SyncStoreException($"PostgreSQL store {SafeText.Quote(Name)} failed to {operation}: {detail}", PostgresSql.IsTransient(ex), Name, key, operation, ex);
    }

    /// <summary>The changes of one collection, in id order, one per key.</summary>
    private sealed record CollectionRows(string Collection, List<EntityChange> Changes);
}
