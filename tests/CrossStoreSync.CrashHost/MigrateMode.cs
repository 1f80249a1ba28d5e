using System.Globalization;
using System.Text;
using CrossStoreSync.Migration;
using CrossStoreSync.Model;
using CrossStoreSync.Sqlite.Log;
using CrossStoreSync.Sqlite.Stores;
using CrossStoreSync.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrossStoreSync.CrashHost;

/// <summary>
/// The "migrate" mode: backfills a new SQLite vector replica from the SQLite source. Before each batch reaches the
/// store it prints "APPLYING n" (n = entities sent so far, counted before the write, so a kill never hides work); at the
/// end it prints "REPORT written resumedFrom verified".
/// </summary>
internal static class MigrateMode
{
    public const int Workers = 2;
    public const int MaxBatch = 200;

    public static async Task<int> RunAsync(string dir)
    {
        var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = true };
        var gate = new Lock();
        long sent = 0;

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_ => new SqliteChangeLog(Path.Combine(dir, "source.db")));
        builder.Services.AddSingleton(_ => new SqliteVectorStore(Path.Combine(dir, "vectors.db")));
        builder.Services.AddCrossStoreSync(o =>
            {
                o.AddCollection("items", 8);
                o.ReplicasAwaitingBackfill.Add("vectors");
                o.PollInterval = TimeSpan.FromMilliseconds(100);
            })
            .UseChangeLog(sp => sp.GetRequiredService<SqliteChangeLog>())
            .UseSourceOfTruth(sp => sp.GetRequiredService<SqliteChangeLog>().Documents)
            .AddReplica("vectors", sp => new AnnouncingVectorStore(sp.GetRequiredService<SqliteVectorStore>(), count =>
            {
                lock (gate)
                {
                    sent += count;
                    output.WriteLine("APPLYING " + sent.ToString(CultureInfo.InvariantCulture));
                }
            }));

        using var host = builder.Build();
        await host.StartAsync();
        var report = await host.Services.GetRequiredService<IMigrationManager>().RunAsync(new MigrationRequest
        {
            Id = "crash-test",
            Target = "vectors",
            Workers = Workers,
            InitialBatchSize = 50,
            MinBatchSize = 10,
            MaxBatchSize = MaxBatch,
        });
        lock (gate)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"REPORT {report.Written} {report.ResumedFrom} {report.IsVerified}"));
        }

        await host.StopAsync();
        return report.IsVerified ? 0 : 3;
    }

    /// <summary>Announces every batch before the wrapped store applies it.</summary>
    private sealed class AnnouncingVectorStore(IVectorStore inner, Action<int> announce) : IVectorStore
    {
        public string Name => inner.Name;

        public StoreKind Kind => inner.Kind;

        public ValueTask InitializeAsync(IReadOnlyList<CollectionDefinition> collections, CancellationToken cancellationToken) => inner.InitializeAsync(collections, cancellationToken);

        public ValueTask ApplyAsync(IReadOnlyList<EntityChange> changes, CancellationToken cancellationToken)
        {
            announce(changes.Count);
            return inner.ApplyAsync(changes, cancellationToken);
        }

        public ValueTask<IReadOnlyList<EntityDigest>> ReadDigestsAsync(string collection, IReadOnlyList<string> ids, CancellationToken cancellationToken) => inner.ReadDigestsAsync(collection, ids, cancellationToken);

        public IAsyncEnumerable<EntityDigest> ScanDigestsAsync(string collection, BucketRange range, CancellationToken cancellationToken) => inner.ScanDigestsAsync(collection, range, cancellationToken);

        public ValueTask<long> CountAsync(string collection, CancellationToken cancellationToken) => inner.CountAsync(collection, cancellationToken);

        public ValueTask<long> RemoveByOriginAsync(string collection, string origin, CancellationToken cancellationToken) => inner.RemoveByOriginAsync(collection, origin, cancellationToken);

        public ValueTask<IReadOnlyList<VectorMatch>> SearchAsync(string collection, ReadOnlyMemory<float> query, int limit, CancellationToken cancellationToken) => inner.SearchAsync(collection, query, limit, cancellationToken);
    }
}
