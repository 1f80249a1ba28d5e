using System.Globalization;
using System.Text;
using CrossStoreSync.Errors;
using CrossStoreSync.Hashing;
using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace CrossStoreSync.PostgreSql.Log;

/// <summary>Conflict records of replication between nodes: each keeps the losing state whole, so nothing is lost silently.</summary>
public sealed partial class PostgresChangeLog
{
    private const string ConflictColumns = "id, collection, entity_id, detected_at, peer, winner, resolution, loser_kind, loser_version, loser_hash, loser_payload";

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ConflictRecord>> ListConflictsAsync(string? collection, string? id, long afterId, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCount, 1);
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

            // Only the filters given, so that a lookup of one key uses the (collection, entity_id, id) index.
            var sql = new StringBuilder($"SELECT {ConflictColumns} FROM {_s}.conflicts WHERE id > $1");
            await using var command = new NpgsqlCommand { Connection = connection };
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterId });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });
            foreach (var (column, value) in new[] { ("collection", collection), ("entity_id", id) })
            {
                if (value is not null)
                {
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });
                    sql.Append(" AND ").Append(column).Append(" = $").Append(command.Parameters.Count.ToString(CultureInfo.InvariantCulture));
                }
            }

            command.CommandText = sql.Append(" ORDER BY id LIMIT $2").ToString();
            var result = new List<ConflictRecord>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                result.Add(ReadConflict(reader));
            }

            return result;
        }
        catch (NpgsqlException ex)
        {
            throw LogFailure("list conflicts", ex);
        }
    }

    /// <summary>
    /// Numbers the conflicts from <c>conflict_head</c>, whose row lock is held until commit, so ids follow commit order
    /// and a reader listing after an id never steps over one committed later (a sequence would allow that).
    /// </summary>
    private async Task<List<ConflictRecord>> InsertConflictsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<ConflictRecord> conflicts, CancellationToken cancellationToken)
    {
        long last;
        await using (var head = new NpgsqlCommand($"UPDATE {_s}.conflict_head SET last_id = last_id + $1 WHERE id = 1 RETURNING last_id", connection, transaction))
        {
            head.Parameters.Add(new NpgsqlParameter<long> { TypedValue = conflicts.Count });
            last = (long)(await head.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var count = conflicts.Count;
        var ids = new long[count];
        var collections = new string[count];
        var entityIds = new string[count];
        var detectedAt = new DateTime[count];
        var peers = new int[count];
        var winners = new long[count];
        var resolutions = new short[count];
        var kinds = new short[count];
        var versions = new long[count];
        var hashes = new byte[count][];
        var payloads = new byte[]?[count];
        var recorded = new List<ConflictRecord>(count);
        for (var i = 0; i < count; i++)
        {
            var conflict = conflicts[i] with { Id = last - count + 1 + i };
            recorded.Add(conflict);
            ids[i] = conflict.Id;
            collections[i] = conflict.Key.Collection;
            entityIds[i] = conflict.Key.Id;
            detectedAt[i] = conflict.DetectedAt.UtcDateTime;
            peers[i] = conflict.PeerNodeId;
            winners[i] = conflict.Winner.Value;
            resolutions[i] = (short)conflict.Resolution;
            kinds[i] = (short)conflict.Loser.Kind;
            versions[i] = conflict.Loser.Version.Value;
            hashes[i] = DocumentCodec.HashToBytes(conflict.Loser.ContentHash);
            payloads[i] = conflict.Loser.Entity is { } entity ? EntityEncoding.EncodeToArray(entity) : null;
        }

        await using var insert = new NpgsqlCommand($"""
            INSERT INTO {_s}.conflicts ({ConflictColumns})
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::bigint[], $7::smallint[], $8::smallint[], $9::bigint[], $10::bytea[], $11::bytea[])
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = collections });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = entityIds });
        insert.Parameters.Add(new NpgsqlParameter { Value = detectedAt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        insert.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = peers });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = winners });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = resolutions });
        insert.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = kinds });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = versions });
        insert.Parameters.Add(new NpgsqlParameter { Value = hashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return recorded;
    }

    private static ConflictRecord ReadConflict(NpgsqlDataReader reader)
    {
        var id = reader.GetInt64(0);
        try
        {
            var key = new EntityKey(reader.GetString(1), reader.GetString(2));
            var loserVersion = new HlcTimestamp(reader.GetInt64(8));
            var loser = (ChangeKind)reader.GetInt16(7) == ChangeKind.Delete
                ? EntityChange.Delete(key, loserVersion)
                : EntityChange.Upsert(EntityEncoding.Decode(reader.GetFieldValue<byte[]>(10)), loserVersion, DocumentCodec.BytesToHash(reader.GetFieldValue<byte[]>(9)));
            return new ConflictRecord(
                id,
                key,
                new DateTimeOffset(reader.GetDateTime(3), TimeSpan.Zero),
                reader.GetInt32(4),
                new HlcTimestamp(reader.GetInt64(5)),
                loser,
                (ConflictResolutionKind)reader.GetInt16(6));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException)
        {
            throw new ChangeLogCorruptedException($"Conflict record {id} cannot be decoded: {ex.Message}", 0, "conflict", ex);
        }
    }
}
