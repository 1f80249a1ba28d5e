using QdrantProtoExport;
using System.Reflection;
using System.Text;

// Writes every .proto file whose descriptor Qdrant.Client carries (the generated *Reflection classes embed each
// compiled FileDescriptorProto) back out as .proto text, so Grpc.Tools can generate the test fake's server classes
// from exactly the schema the client was built with. Only csharp_namespace is changed: the fake's generated types live
// in their own namespace and cannot clash with the client's. Usage: QdrantProtoExport <output directory> <namespace>.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: QdrantProtoExport <output directory> <csharp namespace>");
    return 2;
}

var output = Path.GetFullPath(args[0]);
var csharpNamespace = args[1];
var assembly = typeof(Qdrant.Client.QdrantClient).Assembly;
var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
    ?? assembly.GetName().Version?.ToString() ?? "unknown";
Directory.CreateDirectory(output);
foreach (var stale in Directory.EnumerateFiles(output, "*.proto"))
{
    File.Delete(stale);
}

var files = SchemaFiles.Of(assembly);
foreach (var file in files)
{
    var text = ProtoWriter.Write(file, SchemaFiles.UnusedImports(file, files), csharpNamespace, version);
    File.WriteAllText(Path.Combine(output, file.Name), text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    Console.WriteLine($"{file.Name}: {file.MessageType.Count} messages, {file.Service.Count} services");
}

File.WriteAllText(Path.Combine(output, "VERSION"), version + "\n");
Console.WriteLine($"Wrote {files.Count} .proto files of Qdrant.Client {version} to {output}.");
return 0;
