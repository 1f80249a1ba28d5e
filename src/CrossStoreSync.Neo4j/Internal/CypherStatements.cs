using CrossStoreSync.Errors;

using System.Text;

namespace CrossStoreSync.Neo4j.Internal;

/// <summary>
/// Every Cypher statement the Neo4j store can send, in one place. Values always travel as parameters (<c>$name</c>);
/// the only text spliced in is an identifier — a collection label or an edge type — that passed
/// <see cref="Identifier"/> (the same rule <c>EntityKey</c> and <c>SyncEdge</c> enforce) and is back-quoted as well,
/// plus integers the code itself computes (edge group numbers). A test enumerates these and checks that.
/// </summary>
/// <remarks>
/// Graph model: an entity is a node labelled with its collection and <c>:SyncEntity</c>, with the entity id in
/// <c>id</c> (unique per label) and the <c>_sync_*</c> properties; an edge is a relationship of the edge's type with
/// <c>_ord</c> (its position, so duplicates survive) and <c>_props</c> (its JSON properties, verbatim). A node without
/// <c>_sync_version</c> is a placeholder made by an edge to an entity never written; a node with
/// <c>_sync_deleted = true</c> is a tombstone. Neither counts as an existing entity.
/// </remarks>
internal static class CypherStatements
{
    /// <summary>The label every entity node carries besides its collection's.</summary>
    public const string CommonLabel = "SyncEntity";

    /// <summary>The parameter names statements use; the catalogue test checks nothing else appears.</summary>
    public static readonly string[] Parameters = ["rows", "ids", "after", "first", "last", "limit", "origin", "id", "type", "version"];

    /// <summary>An existing entity: written (not a placeholder) and not deleted.</summary>
    private const string Live = "n._sync_version IS NOT NULL AND n._sync_deleted = false";

    /// <summary>The collection of a node: its label other than the common one.</summary>
    private const string CollectionOf = "[l IN labels({0}) WHERE l <> '" + CommonLabel + "'][0]";

    /// <summary>The uniqueness constraint on the key of one collection (it also indexes <c>id</c>).</summary>
    public static string KeyConstraint(string label)
    {
        var l = Identifier(label);
        return $"CREATE CONSTRAINT css_{label}_id IF NOT EXISTS FOR (n:{l}) REQUIRE n.id IS UNIQUE";
    }

    /// <summary>The range index on the bucket, for digest scans of a bucket range.</summary>
    public static string BucketIndex(string label)
    {
        var l = Identifier(label);
        return $"CREATE INDEX css_{label}_bucket IF NOT EXISTS FOR (n:{l}) ON (n._sync_bucket)";
    }

    /// <summary>
    /// Writes a batch of one collection in one statement. <c>$rows</c> holds <c>{id, version, hash, bucket, deleted,
    /// origin, vector, edges: [{g, id, props, ord}]}</c>; <paramref name="edgeGroups"/> lists the distinct
    /// (edge type, target collection) pairs of the batch, and an edge's <c>g</c> is its pair's index — a relationship
    /// type and a label cannot be parameters, so each pair gets its own <c>FOREACH</c>.
    /// The version guard is inside: only a node whose stored version is older (or absent: new or placeholder) is
    /// changed, its outgoing edges replaced; incoming edges belong to other entities and stay. Vectors are written as
    /// float lists through <c>toFloat</c>, because JSON numbers such as <c>1</c> would otherwise arrive as integers
    /// (PROTOCOLS.md §2.2).
    /// </summary>
    public static string ApplyBatch(string label, IReadOnlyList<(string Type, string TargetLabel)> edgeGroups)
    {
        var l = Identifier(label);
        var s = new StringBuilder()
            .Append("UNWIND $rows AS row\n")
            .Append("MERGE (n:").Append(l).Append(" {id: row.id})\n")
            .Append("ON CREATE SET n:").Append(CommonLabel).Append('\n')
            .Append("WITH n, row\n")
            .Append("WHERE n._sync_version IS NULL OR n._sync_version < row.version\n")
            .Append("OPTIONAL MATCH (n)-[old]->()\n")
            .Append("WITH n, row, collect(old) AS olds\n")
            .Append("FOREACH (o IN olds | DELETE o)\n")
            .Append("SET n._sync_version = row.version, n._sync_hash = row.hash, n._sync_bucket = row.bucket, n._sync_deleted = row.deleted, n._sync_origin = row.origin, n.embedding = [x IN row.vector | toFloat(x)]\n");
        for (var g = 0; g < edgeGroups.Count; g++)
        {
            var (type, target) = edgeGroups[g];
            s.Append("FOREACH (e IN [x IN row.edges WHERE x.g = ").Append(g).Append("] | ")
             .Append("MERGE (t:").Append(Identifier(target)).Append(" {id: e.id}) ON CREATE SET t:").Append(CommonLabel).Append(' ')
             .Append("CREATE (n)-[r:").Append(Identifier(type)).Append("]->(t) SET r._props = e.props, r._ord = e.ord)\n");
        }

        return s.Append("RETURN count(n) AS applied").ToString();
    }

    /// <summary>Digests of the given ids (<c>$ids</c>): live nodes only, each with its outgoing edges.</summary>
    public static string ReadDigests(string label) =>
        $"UNWIND $ids AS k\nMATCH (n:{Identifier(label)} {{id: k}})\nWHERE {Live}\n" + DigestTail;

    /// <summary>One page of digests: live nodes of a bucket range (<c>$first</c>..<c>$last</c>) after key <c>$after</c>, by key, at most <c>$limit</c>.</summary>
    public static string ScanDigests(string label) =>
        $"MATCH (n:{Identifier(label)})\nWHERE n.id > $after AND n._sync_bucket >= $first AND n._sync_bucket <= $last AND {Live}\n" +
        "WITH n ORDER BY n.id LIMIT $limit\n" + DigestTail + "\nORDER BY id";

    private static readonly string DigestTail =
        "OPTIONAL MATCH (n)-[e]->(t)\n" +
        "WITH n, collect(CASE WHEN e IS NULL THEN NULL ELSE [type(e), " + string.Format(System.Globalization.CultureInfo.InvariantCulture, CollectionOf, "t") + ", t.id, e._props] END) AS edges\n" +
        "RETURN n.id AS id, n._sync_version AS version, n._sync_hash AS hash, n._sync_bucket AS bucket, edges";

    /// <summary>Counts the live entities of a collection.</summary>
    public static string Count(string label) =>
        $"MATCH (n:{Identifier(label)})\nWHERE {Live}\nRETURN count(n) AS count";

    /// <summary>
    /// Removes the nodes tagged with <c>$origin</c> without tombstones: their outgoing edges go; a node that other
    /// entities' edges still point at becomes a placeholder (those edges belong to the other entities), any other is deleted.
    /// </summary>
    public static string RemoveByOrigin(string label) =>
        $"MATCH (n:{Identifier(label)})\nWHERE n._sync_origin = $origin\n" +
        "OPTIONAL MATCH (n)-[out]->()\n" +
        "WITH n, collect(out) AS outs\n" +
        "FOREACH (o IN outs | DELETE o)\n" +
        "WITH n, EXISTS { MATCH (n)<-[]-() } AS referenced\n" +
        "FOREACH (x IN CASE WHEN referenced THEN [1] ELSE [] END | REMOVE n._sync_version, n._sync_hash, n._sync_bucket, n._sync_deleted, n._sync_origin, n.embedding)\n" +
        "FOREACH (x IN CASE WHEN referenced THEN [] ELSE [1] END | DELETE n)\n" +
        "RETURN count(*) AS removed";

    /// <summary>
    /// Purges up to <c>$limit</c> tombstones older than <c>$version</c>. A tombstone other entities' edges still point
    /// at becomes a placeholder (those edges belong to the other entities and stay), any other is deleted; either way the
    /// key no longer holds a version, so an older change would be applied again.
    /// </summary>
    public static string PurgeTombstones(string label) =>
        $"MATCH (n:{Identifier(label)})\nWHERE n._sync_deleted = true AND n._sync_version < $version\n" +
        "WITH n LIMIT $limit\n" +
        "WITH n, EXISTS { MATCH (n)<-[]-() } AS referenced\n" +
        "FOREACH (x IN CASE WHEN referenced THEN [1] ELSE [] END | REMOVE n._sync_version, n._sync_hash, n._sync_bucket, n._sync_deleted, n._sync_origin, n.embedding)\n" +
        "FOREACH (x IN CASE WHEN referenced THEN [] ELSE [1] END | DETACH DELETE n)\n" +
        "RETURN count(*) AS purged";

    /// <summary>Outgoing neighbours of node <c>$id</c>, optionally of edge type <c>$type</c>, in edge order.</summary>
    public static string OutgoingNeighbors(string label) =>
        $"MATCH (n:{Identifier(label)} {{id: $id}})-[e]->(t)\nWHERE $type IS NULL OR type(e) = $type\n" +
        "RETURN type(e) AS type, " + string.Format(System.Globalization.CultureInfo.InvariantCulture, CollectionOf, "t") + " AS collection, t.id AS id, " +
        "(t._sync_version IS NOT NULL AND t._sync_deleted = false) AS live\nORDER BY e._ord";

    /// <summary>Incoming neighbours of node <c>$id</c>, optionally of edge type <c>$type</c>.</summary>
    public static string IncomingNeighbors(string label) =>
        $"MATCH (n:{Identifier(label)} {{id: $id}})<-[e]-(s)\nWHERE $type IS NULL OR type(e) = $type\n" +
        "RETURN type(e) AS type, " + string.Format(System.Globalization.CultureInfo.InvariantCulture, CollectionOf, "s") + " AS collection, s.id AS id, " +
        "(s._sync_version IS NOT NULL AND s._sync_deleted = false) AS live\nORDER BY s.id, e._ord";

    /// <summary>
    /// Checks an identifier (letter, then letters, digits and '_', at most 64) and back-quotes it. Collections and edge
    /// types were validated when the key or edge was created; this check keeps the guarantee local to the one place
    /// that builds Cypher text.
    /// </summary>
    /// <exception cref="ArgumentException">The value is not such an identifier.</exception>
    public static string Identifier(string value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 64 || !char.IsAsciiLetter(value[0]))
        {
            throw new ArgumentException($"{SafeText.Quote(value)} is not a valid label or relationship type.", nameof(value));
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                throw new ArgumentException($"{SafeText.Quote(value)} is not a valid label or relationship type.", nameof(value));
            }
        }

        return "`" + value + "`";
    }
}
