namespace CrossStoreSync.PostgreSql;

/// <summary>Names shared by the PostgreSQL components.</summary>
internal static class PostgresNames
{
    /// <summary>The default schema of the library's own tables.</summary>
    public const string DefaultSchema = "crossstoresync";
}
