using System.Reflection;
using Google.Protobuf.Reflection;

namespace CrossStoreSync.Qdrant.Tests;

/// <summary>
/// The fake's gRPC schema (tests/CrossStoreSync.Qdrant.Fake/Protos, compiled by Grpc.Tools) must be the schema embedded
/// in the Qdrant.Client the adapter uses: after a client upgrade without eng/qdrant-grpc/export.sh, this fails.
/// </summary>
public sealed class QdrantSchemaTests
{
    private static Dictionary<string, FileDescriptorProto> Schema(Assembly assembly)
    {
        var result = new Dictionary<string, FileDescriptorProto>(StringComparer.Ordinal);
        foreach (var type in assembly.GetTypes())
        {
            if (type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static) is { PropertyType: var t } property && t == typeof(FileDescriptor)
                && property.GetValue(null) is FileDescriptor descriptor)
            {
                result[descriptor.Name] = FileDescriptorProto.Parser.ParseFrom(descriptor.SerializedData);
            }
        }

        return result;
    }

    [Fact]
    public void The_fakes_schema_is_the_one_compiled_into_Qdrant_Client()
    {
        var client = Schema(typeof(global::Qdrant.Client.QdrantClient).Assembly);
        var fake = Schema(typeof(Fake.FakeQdrantServer).Assembly);
        Assert.Equal(client.Keys.Order(StringComparer.Ordinal), fake.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("points_service.proto", client.Keys);

        foreach (var (name, theirs) in client)
        {
            var ours = fake[name];
            Assert.Equal("CrossStoreSync.Qdrant.Fake.Api", ours.Options.CsharpNamespace);

            // The export leaves out imports that define nothing the file uses (protoc warns about them); every import
            // the fake keeps is one the client's file has.
            Assert.Empty(ours.Dependency.Except(theirs.Dependency));
            Assert.True(
                Normalized(ours).Equals(Normalized(theirs)),
                $"{name} differs between the fake and Qdrant.Client; run eng/qdrant-grpc/export.sh.\nfake:   {Normalized(ours)}\nclient: {Normalized(theirs)}");
        }
    }

    [Fact]
    public void The_comparison_sees_a_changed_field()
    {
        // The check above must be able to fail: the same normalisation applied to a schema with one field renumbered differs.
        var theirs = Schema(typeof(global::Qdrant.Client.QdrantClient).Assembly)["points.proto"];
        var changed = theirs.Clone();
        var upsert = changed.MessageType.Single(m => m.Name == "UpsertPoints");
        upsert.Field.Single(f => f.Name == "update_filter").Number = 99;
        Assert.False(Normalized(changed).Equals(Normalized(theirs)));
    }

    /// <summary>
    /// The descriptor without what may legitimately differ: the C# namespace, the import list (checked separately), and
    /// the order of nested types (map entries are generated where the map field stands, which .proto text cannot place).
    /// </summary>
    private static FileDescriptorProto Normalized(FileDescriptorProto file)
    {
        var copy = file.Clone();
        copy.Options.CsharpNamespace = string.Empty;
        copy.Dependency.Clear();
        foreach (var message in copy.MessageType)
        {
            SortNested(message);
        }

        return copy;
    }

    private static void SortNested(DescriptorProto message)
    {
        var nested = message.NestedType.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        message.NestedType.Clear();
        message.NestedType.Add(nested);
        foreach (var child in message.NestedType)
        {
            SortNested(child);
        }
    }
}
