// RagMemory: SurrealDB (source of truth) → Qdrant (vectors) + Neo4j (graph), configured from appsettings.json,
// environment variables or the command line. Without the servers it says which are unreachable and exits 2.
return await RagMemory.RagMemoryApp.RunAsync(args, Console.Out);
