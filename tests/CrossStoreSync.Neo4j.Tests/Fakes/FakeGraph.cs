using System.Text.Json;
using System.Text.Json.Nodes;
using CrossStoreSync.Neo4j.Internal;

namespace CrossStoreSync.Neo4j.Tests.Fakes;

/// <summary>A node of <see cref="FakeNeo4jServer"/>.</summary>
public sealed class FakeNode(string label, string id)
{
    public string Label { get; } = label;

    public string Id { get; } = id;

    public HashSet<string> Labels { get; } = [label, CypherStatements.CommonLabel];

    public Dictionary<string, JsonNode?> Properties { get; } = new(StringComparer.Ordinal);

    public bool IsLive => Properties.ContainsKey("_sync_version") && Properties["_sync_deleted"]?.GetValue<bool>() == false;
}

/// <summary>A relationship of <see cref="FakeNeo4jServer"/>.</summary>
public sealed record FakeRelationship(FakeNode Start, FakeNode End, string Type, string? Props, long Ord);

/// <summary>
/// TEST CODE — the in-memory graph behind <see cref="FakeNeo4jServer"/>, executing each statement of
/// <see cref="CypherStatements"/> with the semantics its Cypher has on a real server.
/// </summary>
public sealed class FakeGraph
{
    private readonly Dictionary<(string Label, string Id), FakeNode> _nodes = [];
    private readonly List<FakeRelationship> _relationships = [];

    public Lock Sync { get; } = new();

    public HashSet<string> Schema { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<FakeRelationship> Relationships => _relationships;

    public FakeNode? Node(string label, string id) => _nodes.GetValueOrDefault((label, id));

    public void AddRelationship(FakeRelationship relationship) => _relationships.Add(relationship);

    public long Apply(string label, IReadOnlyList<(string Type, string TargetLabel)> groups, JsonElement rows)
    {
        long applied = 0;
        foreach (var row in rows.EnumerateArray())
        {
            var node = GetOrCreate(label, row.GetProperty("id").GetString()!);
            var version = row.GetProperty("version").GetInt64();
            if (node.Properties.TryGetValue("_sync_version", out var stored) && stored!.GetValue<long>() >= version)
            {
                continue;
            }

            applied++;
            _relationships.RemoveAll(r => r.Start == node);
            node.Properties["_sync_version"] = version;
            node.Properties["_sync_hash"] = row.GetProperty("hash").GetString();
            node.Properties["_sync_bucket"] = row.GetProperty("bucket").GetInt64();
            node.Properties["_sync_deleted"] = row.GetProperty("deleted").GetBoolean();
            Set(node, "_sync_origin", row.GetProperty("origin").ValueKind == JsonValueKind.Null ? null : row.GetProperty("origin").GetString());
            var vector = row.GetProperty("vector");
            if (vector.ValueKind == JsonValueKind.Null)
            {
                node.Properties.Remove("embedding");
            }
            else
            {
                // toFloat(x) over each element: a FLOAT list whatever the JSON spelling.
                node.Properties["embedding"] = new JsonArray(vector.EnumerateArray().Select(x => (JsonNode)JsonValue.Create(x.GetDouble())).ToArray());
            }

            foreach (var edge in row.GetProperty("edges").EnumerateArray())
            {
                var (type, targetLabel) = groups[edge.GetProperty("g").GetInt32()];
                var target = GetOrCreate(targetLabel, edge.GetProperty("id").GetString()!);
                var props = edge.GetProperty("props");
                _relationships.Add(new FakeRelationship(node, target, type, props.ValueKind == JsonValueKind.Null ? null : props.GetString(), edge.GetProperty("ord").GetInt64()));
            }
        }

        return applied;
    }

    public JsonArray Digest(FakeNode node)
    {
        var edges = new JsonArray();
        foreach (var r in _relationships.Where(r => r.Start == node))
        {
            edges.Add(new JsonArray(r.Type, CollectionOf(r.End), r.End.Id, r.Props));
        }

        return new JsonArray(node.Id, node.Properties["_sync_version"]!.DeepClone(), node.Properties["_sync_hash"]?.DeepClone(), node.Properties["_sync_bucket"]!.DeepClone(), edges);
    }

    public IEnumerable<FakeNode> Live(string label) => _nodes.Values.Where(n => n.Label == label && n.IsLive);

    public long RemoveByOrigin(string label, string origin)
    {
        long removed = 0;
        foreach (var node in _nodes.Values.Where(n => n.Label == label && n.Properties.TryGetValue("_sync_origin", out var o) && o?.GetValue<string>() == origin).ToList())
        {
            removed++;
            _relationships.RemoveAll(r => r.Start == node);
            if (_relationships.Any(r => r.End == node))
            {
                foreach (var p in (string[])["_sync_version", "_sync_hash", "_sync_bucket", "_sync_deleted", "_sync_origin", "embedding"])
                {
                    node.Properties.Remove(p);
                }
            }
            else
            {
                _nodes.Remove((node.Label, node.Id));
            }
        }

        return removed;
    }

    public long PurgeTombstones(string label, long version, int limit)
    {
        long purged = 0;
        foreach (var node in _nodes.Values.Where(n => n.Label == label
                     && n.Properties.TryGetValue("_sync_deleted", out var d) && d?.GetValue<bool>() == true
                     && n.Properties.TryGetValue("_sync_version", out var v) && v!.GetValue<long>() < version).Take(limit).ToList())
        {
            purged++;
            if (_relationships.Any(r => r.End == node))
            {
                foreach (var p in (string[])["_sync_version", "_sync_hash", "_sync_bucket", "_sync_deleted", "_sync_origin", "embedding"])
                {
                    node.Properties.Remove(p);
                }
            }
            else
            {
                _relationships.RemoveAll(r => r.Start == node);
                _nodes.Remove((node.Label, node.Id));
            }
        }

        return purged;
    }

    public IEnumerable<JsonArray> Neighbors(string label, string id, string? type, bool outgoing)
    {
        if (Node(label, id) is not { } node)
        {
            return [];
        }

        var rels = _relationships.Where(r => (outgoing ? r.Start : r.End) == node && (type is null || r.Type == type));
        rels = outgoing ? rels.OrderBy(r => r.Ord) : rels.OrderBy(r => r.Start.Id, StringComparer.Ordinal).ThenBy(r => r.Ord);
        return rels.Select(r =>
        {
            var other = outgoing ? r.End : r.Start;
            return new JsonArray(r.Type, CollectionOf(other), other.Id, other.IsLive);
        }).ToList();
    }

    private static string CollectionOf(FakeNode node) => node.Labels.First(l => l != CypherStatements.CommonLabel);

    private FakeNode GetOrCreate(string label, string id)
    {
        if (!_nodes.TryGetValue((label, id), out var node))
        {
            _nodes[(label, id)] = node = new FakeNode(label, id);
        }

        return node;
    }

    private static void Set(FakeNode node, string property, string? value)
    {
        // Setting a property to null removes it, as in Cypher.
        if (value is null)
        {
            node.Properties.Remove(property);
        }
        else
        {
            node.Properties[property] = value;
        }
    }
}
