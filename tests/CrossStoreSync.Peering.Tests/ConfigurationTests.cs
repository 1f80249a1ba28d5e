using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Peering.Tests;

/// <summary>Bad configuration stops the host at start with the field named.</summary>
public sealed class ConfigurationTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(2);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private async Task<string> FailsAsync(Action<Configuration.PeeringOptions> configure)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => _cluster.StartAsync(1, configure));
        return error.Message;
    }

    [Fact]
    public async Task A_missing_key_is_named()
    {
        var message = await FailsAsync(o => o.SigningKey = null);
        Assert.Contains("PeeringOptions.SigningKey and SigningKeyFile are both missing", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_key_is_named_without_its_value()
    {
        var message = await FailsAsync(o => o.SigningKey = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=");
        Assert.Contains("PeeringOptions.SigningKey must be base64 of a 32-byte Ed25519 key", message, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_key_file_is_named()
    {
        var message = await FailsAsync(o =>
        {
            o.SigningKey = null;
            o.SigningKeyFile = "/nonexistent/node.key";
        });
        Assert.Contains("PeeringOptions.SigningKeyFile '/nonexistent/node.key' cannot be read", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_file_is_read()
    {
        var file = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".key");
        await File.WriteAllTextAsync(file, _cluster[1].PrivateKey + "\n");
        try
        {
            var node = await _cluster.StartAsync(1, o =>
            {
                o.SigningKey = null;
                o.SigningKeyFile = file;
            });
            Assert.Equal(1, node.Peering.NodeId);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Duplicate_node_ids_are_named()
    {
        var message = await FailsAsync(o => o.Peers.Add(new Configuration.PeerOptions { NodeId = 2, Url = "http://127.0.0.1:1", PublicKey = _cluster[2].PublicKey }));
        Assert.Contains("PeeringOptions.Peers[1].NodeId 2 is listed twice", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_nodes_own_id_as_a_peer_is_named()
    {
        var message = await FailsAsync(o => o.Peers[0].NodeId = 1);
        Assert.Contains("PeeringOptions.Peers[0].NodeId is 1, this node's own id", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_url_is_named_with_its_value()
    {
        var message = await FailsAsync(o => o.Peers[0].Url = "ftp://peer");
        Assert.Contains("PeeringOptions.Peers[0].Url 'ftp://peer' is not an absolute http:// or https:// URL", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_collection_and_a_node_id_mismatch_are_named()
    {
        var message = await FailsAsync(o => o.Peers[0].Collections.Add("nope"));
        Assert.Contains("PeeringOptions.Peers[0].Collections lists 'nope'", message, StringComparison.Ordinal);

        var mismatch = await Assert.ThrowsAsync<OptionsValidationException>(() => _cluster.StartAsync(1, sync: o => o.NodeId = 7));
        Assert.Contains("PeeringOptions.NodeId is 1 but CrossStoreSyncOptions.NodeId is 7", mismatch.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_log_that_cannot_replicate_stops_the_host()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrossStoreSync(o => o.AddCollection("notes"))
            .UseChangeLog(_ => new CrossStoreSync.Testing.Log.InMemoryChangeLog())
            .UseSourceOfTruth(_ => new CrossStoreSync.Testing.Stores.InMemoryDocumentStore("documents"))
            .AddPeering(o =>
            {
                o.NodeId = 1;
                o.SigningKey = _cluster[1].PrivateKey;
                o.Peers.Add(new Configuration.PeerOptions { NodeId = 2, Url = "http://127.0.0.1:1", PublicKey = _cluster[2].PublicKey });
            });
        await using var provider = services.BuildServiceProvider();
        var service = provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<PeerReplicationService>().Single();
        var error = await Assert.ThrowsAsync<Errors.ReplicationNotSupportedException>(() => service.StartAsync(CancellationToken.None));
        Assert.Contains("UseSqlite or UsePostgreSql", error.Message, StringComparison.Ordinal);
    }
}
