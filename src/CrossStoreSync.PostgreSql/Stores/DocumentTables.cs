using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using CrossStoreSync.Hashing;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using CrossStoreSync.Stores;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Stores;

/// <summary>
/// The document store's tables: one per collection in the store's schema, named from the collection, created on
/// demand under the DDL advisory lock, and remembered once seen so the write path asks the catalog only once per
/// collection and process.
/// </summary>
/// <remarks>
/// Names: table <c>doc_&lt;collection&gt;</c>, primary key <c>docpk_&lt;collection&gt;</c>, bucket index
/// <c>docidx_&lt;collection&gt;</c>, tombstone index <c>doctomb_&lt;collection&gt;</c>. The prefixes keep the tables
/// apart from the change log's tables in a shared schema, and the four prefixes never produce each other's names. A name longer than PostgreSQL's 63 characters
/// keeps its first 50 and ends in <c>$</c> and 12 hex digits of its hash: collections cannot contain <c>$</c>, so
/// a shortened name never equals a verbatim one. Thread-safe.
/// </remarks>
internal sealed class DocumentTables(string schema)
{
    private const int ShortenedPrefixLength = 50;
    private readonly ConcurrentDictionary<string, string> _known = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CollectionDefinition> _definitions = new(StringComparer.Ordinal);

    public string Schema { get; } = schema;

    /// <summary>The unqualified table name of a collection.</summary>
    public static string TableName(string collection) => Fit("doc_" + collection);

    /// <summary>The schema-qualified, quoted table name of a collection.</summary>
    public string Qualified(string collection) => PostgresSql.Qualify(Schema, TableName(collection));

    /// <summary>Forgets a table, after the server said it does not exist (dropped, or its creation was rolled back).</summary>
    public void Forget(string collection) => _known.TryRemove(collection, out _);

    /// <summary>Records a collection's configuration (its vector dimension is checked on writes).</summary>
    public void Define(CollectionDefinition definition) => _definitions[definition.Name] = definition;

    /// <summary>The configuration of a collection, when one was recorded with <see cref="Define"/>.</summary>
    public bool TryGetDefinition(string collection, out CollectionDefinition definition) => _definitions.TryGetValue(collection, out definition!);

    /// <summary>
    /// Makes sure the tables of <paramref name="collections"/> exist, inside <paramref name="transaction"/>: asks the
    /// catalog for the ones not yet known and creates the missing ones under the advisory lock (held until the
    /// transaction ends). Tables created here are remembered only when <paramref name="remember"/> is set, that is
    /// when the caller commits the transaction itself; otherwise they are remembered when a later call sees them.
    /// </summary>
    public async Task EnsureAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyCollection<string> collections, bool remember, CancellationToken cancellationToken)
    {
        var unknown = new List<string>(collections.Count);
        foreach (var collection in collections)
        {
            if (!_known.ContainsKey(collection))
            {
                unknown.Add(collection);
            }
        }

        if (unknown.Count == 0)
        {
            return;
        }

        var existing = await ExistingAsync(connection, transaction, unknown, cancellationToken).ConfigureAwait(false);
        var missing = new List<string>(unknown.Count);
        foreach (var collection in unknown)
        {
            if (existing.Contains(TableName(collection)))
            {
                _known[collection] = TableName(collection);
            }
            else
            {
                missing.Add(collection);
            }
        }

        if (missing.Count == 0)
        {
            return;
        }

        await CreateAsync(connection, transaction, missing, cancellationToken).ConfigureAwait(false);
        if (remember)
        {
            foreach (var collection in missing)
            {
                _known[collection] = TableName(collection);
            }
        }
    }

    /// <summary>Creates the schema and the tables (idempotent) under the advisory lock, inside <paramref name="transaction"/>.</summary>
    public async Task CreateAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<string> collections, CancellationToken cancellationToken)
    {
        var sql = new StringBuilder();
        sql.Append("SELECT pg_advisory_xact_lock(").Append(PostgresSql.SchemaLockKey.ToString(CultureInfo.InvariantCulture)).Append(");\n");

        // CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the database before it looks for the schema, so
        // a role allowed to use an existing schema but not to create one would fail: create it only when missing.
        sql.Append("DO $css$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ")
            .Append(Literal(Schema)).Append(") THEN CREATE SCHEMA ").Append(PostgresSql.Quote(Schema)).Append("; END IF; END $css$;\n");
        foreach (var collection in collections)
        {
            var table = Qualified(collection);
            sql.Append("CREATE TABLE IF NOT EXISTS ").Append(table).Append(" (\n")
                .Append("    id text COLLATE \"C\" NOT NULL,\n")
                .Append("    version bigint NOT NULL,\n")
                .Append("    hash bytea NOT NULL,\n")
                .Append("    bucket bigint NOT NULL,\n")
                .Append("    deleted boolean NOT NULL,\n")
                .Append("    origin text,\n")
                .Append("    document jsonb,\n")
                .Append("    document_raw bytea,\n")
                .Append("    vector real[],\n")
                .Append("    edges bytea,\n")
                .Append("    vv jsonb,\n")
                .Append("    from_node int,\n")
                .Append("    CONSTRAINT ").Append(PostgresSql.Quote(Fit("docpk_" + collection))).Append(" PRIMARY KEY (id));\n");
            sql.Append("CREATE INDEX IF NOT EXISTS ").Append(PostgresSql.Quote(Fit("docidx_" + collection)))
                .Append(" ON ").Append(table).Append(" (bucket, id);\n");

            // Tombstones only, so a purge reads only them; added to tables created before it at the next start.
            sql.Append("CREATE INDEX IF NOT EXISTS ").Append(PostgresSql.Quote(Fit("doctomb_" + collection)))
                .Append(" ON ").Append(table).Append(" (version) WHERE deleted;\n");
        }

        await using (var command = new NpgsqlCommand(sql.ToString(), connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await AddReplicationColumnsAsync(connection, transaction, collections, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds the causal-history columns (<c>vv</c>, <c>from_node</c>) to tables created before replication between
    /// nodes existed. Both start NULL, which reads as "written on this node, no history from others": exactly what
    /// such a table holds. Only tables that lack them are altered, so a normal start takes no ACCESS EXCLUSIVE lock
    /// (an ALTER TABLE takes it even when IF NOT EXISTS finds the column). Runs under the caller's advisory DDL lock.
    /// </summary>
    private async Task AddReplicationColumnsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<string> collections, CancellationToken cancellationToken)
    {
        var names = new string[collections.Count];
        for (var i = 0; i < names.Length; i++)
        {
            names[i] = TableName(collections[i]);
        }

        const string Sql = """
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'from_node' AND NOT a.attisdropped)
            """;
        var outdated = new List<string>();
        await using (var find = new NpgsqlCommand(Sql, connection, transaction))
        {
            find.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = Schema });
            find.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = names });
            await using var reader = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                outdated.Add(reader.GetString(0));
            }
        }

        if (outdated.Count == 0)
        {
            return;
        }

        var alter = new StringBuilder();
        foreach (var table in outdated)
        {
            alter.Append("ALTER TABLE ").Append(PostgresSql.Qualify(Schema, table))
                .Append(" ADD COLUMN IF NOT EXISTS vv jsonb, ADD COLUMN IF NOT EXISTS from_node int;\n");
        }

        await using var command = new NpgsqlCommand(alter.ToString(), connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Marks tables as existing (after the transaction that created them committed).</summary>
    public void Remember(IEnumerable<string> collections)
    {
        foreach (var collection in collections)
        {
            _known[collection] = TableName(collection);
        }
    }

    /// <summary>
    /// The tables that exist with every current column. One created before the replication columns counts as
    /// missing, so that <see cref="CreateAsync"/> adds them before a write names them.
    /// </summary>
    private async Task<HashSet<string>> ExistingAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, List<string> collections, CancellationToken cancellationToken)
    {
        var names = new string[collections.Count];
        for (var i = 0; i < names.Length; i++)
        {
            names[i] = TableName(collections[i]);
        }

        const string Sql = """
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')
              AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'from_node' AND NOT a.attisdropped)
            """;
        await using var command = new NpgsqlCommand(Sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = Schema });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = names });
        var existing = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            existing.Add(reader.GetString(0));
        }

        return existing;
    }

    /// <summary>
    /// A string literal for the one place a value must be in SQL text (a DO block takes no parameters). Only the
    /// validated schema identifier goes through it, and quotes are doubled regardless.
    /// </summary>
    private static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string Fit(string name)
    {
        if (name.Length <= PostgresSql.MaxIdentifierLength)
        {
            return name;
        }

        var hash = XxHash64.Hash(Encoding.UTF8.GetBytes(name)) & 0xFFFF_FFFF_FFFFUL;
        return string.Concat(name.AsSpan(0, ShortenedPrefixLength), "$", hash.ToString("x12", CultureInfo.InvariantCulture));
    }
}
