using System.Globalization;
using System.Text;
using Google.Protobuf.Reflection;

namespace QdrantProtoExport;

/// <summary>Prints a FileDescriptorProto as proto3 source that compiles back to the same descriptor.</summary>
internal static class ProtoWriter
{
    public static string Write(FileDescriptorProto file, List<string> unusedImports, string csharpNamespace, string version)
    {
        if (file.Syntax != "proto3")
        {
            throw new InvalidOperationException($"{file.Name} has syntax '{file.Syntax}'; only proto3 is supported.");
        }

        var s = new StringBuilder();
        s.Append("// ").Append(file.Name).Append(" of Qdrant's gRPC API as compiled into Qdrant.Client ").Append(version).Append(" (its embedded descriptor),\n")
         .Append("// written back as .proto by eng/qdrant-grpc/export.sh. Only csharp_namespace (and unused imports) differ. Do not edit:\n")
         .Append("// run the script again after upgrading Qdrant.Client.\n");
        if (unusedImports.Count > 0)
        {
            s.Append("// Left out: the imports of ").Append(string.Join(", ", unusedImports)).Append(", which define nothing this file uses (protoc warns about them).\n");
        }

        s
         .Append("syntax = \"proto3\";\n\n")
         .Append("package ").Append(file.Package).Append(";\n\n");
        foreach (var dependency in file.Dependency)
        {
            if (!unusedImports.Contains(dependency))
            {
                s.Append("import \"").Append(dependency).Append("\";\n");
            }
        }

        s.Append('\n').Append("option csharp_namespace = \"").Append(csharpNamespace).Append("\";\n");
        if (file.Options is { HasJavaOuterClassname: true } options)
        {
            s.Append("option java_outer_classname = \"").Append(options.JavaOuterClassname).Append("\";\n");
        }

        foreach (var service in file.Service)
        {
            s.Append('\n');
            WriteService(s, service);
        }

        foreach (var message in file.MessageType)
        {
            s.Append('\n');
            WriteMessage(s, message, 0);
        }

        foreach (var e in file.EnumType)
        {
            s.Append('\n');
            WriteEnum(s, e, 0);
        }

        return s.ToString();
    }

    private static void WriteService(StringBuilder s, ServiceDescriptorProto service)
    {
        s.Append("service ").Append(service.Name).Append(" {\n");
        foreach (var method in service.Method)
        {
            s.Append("  rpc ").Append(method.Name).Append(" (").Append(method.ClientStreaming ? "stream " : string.Empty).Append(method.InputType)
             .Append(") returns (").Append(method.ServerStreaming ? "stream " : string.Empty).Append(method.OutputType).Append(')');

            // "{}" is what gives a method an (empty) options message; ";" leaves it without one.
            if (method.Options is null)
            {
                s.Append(";\n");
            }
            else if (method.Options.Deprecated)
            {
                s.Append(" {\n    option deprecated = true;\n  }\n");
            }
            else
            {
                s.Append(" {}\n");
            }
        }

        s.Append("}\n");
    }

    private static void WriteMessage(StringBuilder s, DescriptorProto message, int depth)
    {
        var indent = new string(' ', depth * 2);
        s.Append(indent).Append("message ").Append(message.Name).Append(" {\n");
        var maps = new Dictionary<string, DescriptorProto>(StringComparer.Ordinal);
        foreach (var nested in message.NestedType)
        {
            if (nested.Options is { MapEntry: true })
            {
                maps[nested.Name] = nested;
            }
            else
            {
                WriteMessage(s, nested, depth + 1);
            }
        }

        foreach (var e in message.EnumType)
        {
            WriteEnum(s, e, depth + 1);
        }

        var inner = indent + "  ";
        var writtenOneofs = new HashSet<int>();
        for (var i = 0; i < message.Field.Count; i++)
        {
            var field = message.Field[i];
            if (field.HasOneofIndex && !field.Proto3Optional)
            {
                var index = field.OneofIndex;
                if (!writtenOneofs.Add(index))
                {
                    continue;
                }

                // A real oneof's members are contiguous in the descriptor: write them all in its block here.
                s.Append(inner).Append("oneof ").Append(message.OneofDecl[index].Name).Append(" {\n");
                foreach (var member in message.Field)
                {
                    if (member.HasOneofIndex && member.OneofIndex == index && !member.Proto3Optional)
                    {
                        WriteField(s, member, maps, inner + "  ");
                    }
                }

                s.Append(inner).Append("}\n");
                continue;
            }

            WriteField(s, field, maps, inner);
        }

        foreach (var range in message.ReservedRange)
        {
            // DescriptorProto reserved ranges are end-exclusive; the source syntax is inclusive.
            s.Append(inner).Append("reserved ").Append(range.Start.ToString(CultureInfo.InvariantCulture));
            if (range.End - 1 > range.Start)
            {
                s.Append(" to ").Append((range.End - 1).ToString(CultureInfo.InvariantCulture));
            }

            s.Append(";\n");
        }

        foreach (var name in message.ReservedName)
        {
            s.Append(inner).Append("reserved \"").Append(name).Append("\";\n");
        }

        if (message.Extension.Count > 0 || message.ExtensionRange.Count > 0 || (message.Options is { MapEntry: false } && message.Options.CalculateSize() > 0))
        {
            throw new InvalidOperationException($"Message {message.Name} uses extensions or message options, which this writer does not print.");
        }

        s.Append(indent).Append("}\n");
    }

    private static void WriteField(StringBuilder s, FieldDescriptorProto field, Dictionary<string, DescriptorProto> maps, string indent)
    {
        s.Append(indent);
        if (field.Label == FieldDescriptorProto.Types.Label.Repeated
            && field.Type == FieldDescriptorProto.Types.Type.Message
            && maps.TryGetValue(field.TypeName[(field.TypeName.LastIndexOf('.') + 1)..], out var entry))
        {
            // A map field is a repeated field of a generated *Entry message; the source spells it map<K, V>.
            s.Append("map<").Append(TypeName(entry.Field[0])).Append(", ").Append(TypeName(entry.Field[1])).Append("> ");
        }
        else
        {
            if (field.Label == FieldDescriptorProto.Types.Label.Repeated)
            {
                s.Append("repeated ");
            }
            else if (field.Proto3Optional)
            {
                s.Append("optional ");
            }
            else if (field.Label == FieldDescriptorProto.Types.Label.Required)
            {
                throw new InvalidOperationException($"Field {field.Name} is required, which proto3 does not have.");
            }

            s.Append(TypeName(field)).Append(' ');
        }

        s.Append(field.Name).Append(" = ").Append(field.Number.ToString(CultureInfo.InvariantCulture));
        var options = new List<string>();
        if (field.HasJsonName)
        {
            options.Add($"json_name = \"{field.JsonName}\"");
        }

        if (field.Options is { } o)
        {
            if (o.Deprecated)
            {
                options.Add("deprecated = true");
            }

            if (o.HasPacked)
            {
                options.Add(o.Packed ? "packed = true" : "packed = false");
            }

            var printed = new FieldOptions { Deprecated = o.Deprecated };
            if (o.HasPacked)
            {
                printed.Packed = o.Packed;
            }

            if (!printed.Equals(o))
            {
                throw new InvalidOperationException($"Field {field.Name} has options this writer does not print: {o}");
            }
        }

        if (options.Count > 0)
        {
            s.Append(" [").Append(string.Join(", ", options)).Append(']');
        }

        s.Append(";\n");
    }

    private static void WriteEnum(StringBuilder s, EnumDescriptorProto e, int depth)
    {
        var indent = new string(' ', depth * 2);
        if (e.Options is not null && !e.Options.Equals(new EnumOptions()) && !e.Options.Equals(new EnumOptions { AllowAlias = e.Options.AllowAlias }))
        {
            throw new InvalidOperationException($"Enum {e.Name} has options this writer does not print: {e.Options}");
        }

        s.Append(indent).Append("enum ").Append(e.Name).Append(" {\n");
        if (e.Options is { AllowAlias: true })
        {
            s.Append(indent).Append("  option allow_alias = true;\n");
        }

        foreach (var value in e.Value)
        {
            s.Append(indent).Append("  ").Append(value.Name).Append(" = ").Append(value.Number.ToString(CultureInfo.InvariantCulture));
            if (value.Options is { Deprecated: true })
            {
                s.Append(" [deprecated = true]");
            }

            s.Append(";\n");
        }

        foreach (var range in e.ReservedRange)
        {
            // Enum reserved ranges are end-inclusive in the descriptor, as in the source.
            s.Append(indent).Append("  reserved ").Append(range.Start.ToString(CultureInfo.InvariantCulture));
            if (range.End > range.Start)
            {
                s.Append(" to ").Append(range.End.ToString(CultureInfo.InvariantCulture));
            }

            s.Append(";\n");
        }

        s.Append(indent).Append("}\n");
    }

    private static string TypeName(FieldDescriptorProto field) => field.Type switch
    {
        FieldDescriptorProto.Types.Type.Double => "double",
        FieldDescriptorProto.Types.Type.Float => "float",
        FieldDescriptorProto.Types.Type.Int64 => "int64",
        FieldDescriptorProto.Types.Type.Uint64 => "uint64",
        FieldDescriptorProto.Types.Type.Int32 => "int32",
        FieldDescriptorProto.Types.Type.Fixed64 => "fixed64",
        FieldDescriptorProto.Types.Type.Fixed32 => "fixed32",
        FieldDescriptorProto.Types.Type.Bool => "bool",
        FieldDescriptorProto.Types.Type.String => "string",
        FieldDescriptorProto.Types.Type.Bytes => "bytes",
        FieldDescriptorProto.Types.Type.Uint32 => "uint32",
        FieldDescriptorProto.Types.Type.Sfixed32 => "sfixed32",
        FieldDescriptorProto.Types.Type.Sfixed64 => "sfixed64",
        FieldDescriptorProto.Types.Type.Sint32 => "sint32",
        FieldDescriptorProto.Types.Type.Sint64 => "sint64",
        FieldDescriptorProto.Types.Type.Message or FieldDescriptorProto.Types.Type.Enum => field.TypeName,
        _ => throw new InvalidOperationException($"Field {field.Name} has type {field.Type}, which proto3 does not allow."),
    };
}
