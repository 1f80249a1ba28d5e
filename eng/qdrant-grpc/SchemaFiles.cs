using System.Reflection;
using Google.Protobuf.Reflection;

namespace QdrantProtoExport;

/// <summary>Finds the file descriptors a generated-code assembly embeds.</summary>
internal static class SchemaFiles
{
    public static List<FileDescriptorProto> Of(Assembly assembly)
    {
        var result = new List<FileDescriptorProto>();
        foreach (var type in assembly.GetTypes())
        {
            if (type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static) is { } property
                && property.PropertyType == typeof(FileDescriptor)
                && property.GetValue(null) is FileDescriptor descriptor)
            {
                // The serialized form is the FileDescriptorProto protoc compiled, as the client embeds it.
                result.Add(FileDescriptorProto.Parser.ParseFrom(descriptor.SerializedData));
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }

    /// <summary>
    /// The imports of <paramref name="file"/> that define no type it uses (qdrant.proto imports every service file).
    /// protoc warns about each, and the build treats warnings as failures, so the writer leaves them out.
    /// </summary>
    public static List<string> UnusedImports(FileDescriptorProto file, List<FileDescriptorProto> all)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in file.MessageType)
        {
            AddUsed(message, used);
        }

        foreach (var service in file.Service)
        {
            foreach (var method in service.Method)
            {
                used.Add(method.InputType);
                used.Add(method.OutputType);
            }
        }

        var unused = new List<string>();
        foreach (var dependency in file.Dependency)
        {
            var defined = all.Find(f => f.Name == dependency) is { } d ? Defined(d) : null;
            if (defined is not null && !defined.Overlaps(used))
            {
                unused.Add(dependency);
            }
        }

        return unused;
    }

    private static void AddUsed(DescriptorProto message, HashSet<string> used)
    {
        foreach (var field in message.Field)
        {
            if (field.HasTypeName)
            {
                used.Add(field.TypeName);
            }
        }

        foreach (var nested in message.NestedType)
        {
            AddUsed(nested, used);
        }
    }

    private static HashSet<string> Defined(FileDescriptorProto file)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        void Add(string prefix, DescriptorProto message)
        {
            var name = prefix + "." + message.Name;
            names.Add(name);
            foreach (var e in message.EnumType)
            {
                names.Add(name + "." + e.Name);
            }

            foreach (var nested in message.NestedType)
            {
                Add(name, nested);
            }
        }

        var root = "." + file.Package;
        foreach (var message in file.MessageType)
        {
            Add(root, message);
        }

        foreach (var e in file.EnumType)
        {
            names.Add(root + "." + e.Name);
        }

        return names;
    }
}
