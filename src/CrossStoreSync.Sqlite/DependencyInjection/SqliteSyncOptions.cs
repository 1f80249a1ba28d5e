using CrossStoreSync.Errors;

namespace CrossStoreSync.Sqlite;

/// <summary>Options of the embedded SQLite setup registered by <c>UseSqlite</c>. Validated at start-up.</summary>
public sealed class SqliteSyncOptions
{
    /// <summary>The folder holding <c>source.db</c> (change log + documents), <c>vectors.db</c> and <c>graph.db</c>. <value>Default <c>crossstoresync-data</c>.</value></summary>
    public string DirectoryPath { get; set; } = "crossstoresync-data";

    /// <summary>Whether every commit is fsync'd before it is acknowledged (<c>synchronous=FULL</c>). <value>Default true.</value></summary>
    public bool Durable { get; set; } = true;

    /// <summary>Name of the document store (source of truth). <value>Default <c>documents</c>.</value></summary>
    public string DocumentStoreName { get; set; } = "documents";

    /// <summary>Name of the vector store replica, or null for none. <value>Default <c>vectors</c>.</value></summary>
    public string? VectorStoreName { get; set; } = "vectors";

    /// <summary>Name of the graph store replica, or null for none. <value>Default <c>graph</c>.</value></summary>
    public string? GraphStoreName { get; set; } = "graph";

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(DirectoryPath))
        {
            throw new ArgumentException($"SqliteSyncOptions.DirectoryPath is {SafeText.Quote(DirectoryPath)}; it must name a folder.", nameof(DirectoryPath));
        }

        if (string.IsNullOrWhiteSpace(DocumentStoreName))
        {
            throw new ArgumentException($"SqliteSyncOptions.DocumentStoreName is {SafeText.Quote(DocumentStoreName)}; it must not be empty.", nameof(DocumentStoreName));
        }
    }
}
