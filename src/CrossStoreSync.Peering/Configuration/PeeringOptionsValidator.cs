using CrossStoreSync.Configuration;
using CrossStoreSync.Consistency;
using CrossStoreSync.Errors;
using CrossStoreSync.Model;
using Microsoft.Extensions.Options;

namespace CrossStoreSync.Peering.Configuration;

/// <summary>Checks <see cref="PeeringOptions"/> at start-up; every failure names the field and (except for keys) the value.</summary>
internal sealed class PeeringOptionsValidator(IOptions<CrossStoreSyncOptions> syncOptions) : IValidateOptions<PeeringOptions>
{
    public ValidateOptionsResult Validate(string? name, PeeringOptions options)
    {
        var errors = new List<string>();
        var sync = syncOptions.Value;
        if (options.NodeId is < 0 or > HlcTimestamp.MaxNodeId)
        {
            errors.Add($"PeeringOptions.NodeId is {options.NodeId}; set this node's id, 0..{HlcTimestamp.MaxNodeId}, unique among its peers.");
        }
        else if (sync.NodeId != options.NodeId)
        {
            errors.Add($"PeeringOptions.NodeId is {options.NodeId} but CrossStoreSyncOptions.NodeId is {sync.NodeId}: they are the same id (the node id of every version this node issues); set one of them, or both to the same value.");
        }

        var ownKey = ValidateSigningKey(options, errors);
        if (options.ListenUrl is { } listen && !IsHttpUrl(listen))
        {
            errors.Add($"PeeringOptions.ListenUrl {SafeText.Quote(listen)} is not an absolute http:// or https:// URL.");
        }

        if (options.Peers.Count == 0)
        {
            errors.Add("PeeringOptions.Peers is empty; add at least one peer (node id, URL, public key).");
        }

        var nodes = new HashSet<int>();
        for (var i = 0; i < options.Peers.Count; i++)
        {
            var peer = options.Peers[i];
            var field = $"PeeringOptions.Peers[{i}]";
            if (peer is null)
            {
                errors.Add($"{field} is null.");
                continue;
            }

            if (peer.NodeId is < 0 or > HlcTimestamp.MaxNodeId)
            {
                errors.Add($"{field}.NodeId is {peer.NodeId}; a node id is 0..{HlcTimestamp.MaxNodeId}.");
            }
            else if (peer.NodeId == options.NodeId)
            {
                errors.Add($"{field}.NodeId is {peer.NodeId}, this node's own id; a node cannot be its own peer.");
            }
            else if (!nodes.Add(peer.NodeId))
            {
                errors.Add($"{field}.NodeId {peer.NodeId} is listed twice; node ids must be unique.");
            }

            if (string.IsNullOrWhiteSpace(peer.Url) || !IsHttpUrl(peer.Url))
            {
                errors.Add($"{field}.Url {SafeText.Quote(peer.Url)} is not an absolute http:// or https:// URL.");
            }

            try
            {
                var key = NodeIdentity.DecodeKey(peer.PublicKey, $"{field}.PublicKey");
                if (ownKey is not null && key.AsSpan().SequenceEqual(ownKey))
                {
                    errors.Add($"{field}.PublicKey is this node's own public key; each node needs its own key pair (PeerKeys.Generate).");
                }
            }
            catch (FormatException ex)
            {
                errors.Add(ex.Message);
            }

            foreach (var collection in peer.Collections)
            {
                if (!sync.TryGetCollection(collection ?? string.Empty, out _))
                {
                    errors.Add($"{field}.Collections lists {SafeText.Quote(collection)}, which is not a configured collection (AddCollection).");
                }
            }
        }

        foreach (var collection in options.ConflictResolvers.Keys)
        {
            if (!sync.TryGetCollection(collection, out _))
            {
                errors.Add($"PeeringOptions.ConflictResolvers has a resolver for {SafeText.Quote(collection)}, which is not a configured collection.");
            }
        }

        Positive(options.MaxClockSkew, nameof(PeeringOptions.MaxClockSkew), errors);
        Positive(options.LongPollTimeout, nameof(PeeringOptions.LongPollTimeout), errors);
        Positive(options.RetryBaseDelay, nameof(PeeringOptions.RetryBaseDelay), errors);
        Positive(options.RequestTimeout, nameof(PeeringOptions.RequestTimeout), errors);
        Positive(options.SessionIdleTimeout, nameof(PeeringOptions.SessionIdleTimeout), errors);
        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            errors.Add($"PeeringOptions.RetryMaxDelay ({options.RetryMaxDelay}) is shorter than RetryBaseDelay ({options.RetryBaseDelay}).");
        }

        if (options.RepairInterval is { } interval && interval <= TimeSpan.Zero)
        {
            errors.Add($"PeeringOptions.RepairInterval is {interval}; use a positive interval, or null to repair only on demand and after a reset.");
        }

        if (options.ChunkEntries is < 1 or > 100_000)
        {
            errors.Add($"PeeringOptions.ChunkEntries is {options.ChunkEntries}; use 1..100000.");
        }

        if (options.ChunkBytes is < 4096 or > 32 * 1024 * 1024)
        {
            errors.Add($"PeeringOptions.ChunkBytes is {options.ChunkBytes}; use 4096..33554432.");
        }

        if (options.EntriesPerPull < options.ChunkEntries)
        {
            errors.Add($"PeeringOptions.EntriesPerPull ({options.EntriesPerPull}) is smaller than ChunkEntries ({options.ChunkEntries}).");
        }

        if (options.RepairTreeDepth is < MerkleTree.MinDepth or > 20)
        {
            errors.Add($"PeeringOptions.RepairTreeDepth is {options.RepairTreeDepth}; use {MerkleTree.MinDepth}..20.");
        }

        if (string.IsNullOrEmpty(options.PathPrefix) || options.PathPrefix[0] != '/' || options.PathPrefix.EndsWith('/'))
        {
            errors.Add($"PeeringOptions.PathPrefix {SafeText.Quote(options.PathPrefix)} must start with '/' and not end with one.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static byte[]? ValidateSigningKey(PeeringOptions options, List<string> errors)
    {
        if ((options.SigningKey is null) == (options.SigningKeyFile is null))
        {
            errors.Add(options.SigningKey is null
                ? "PeeringOptions.SigningKey and SigningKeyFile are both missing; set one (a base64 Ed25519 private key, see PeerKeys.Generate)."
                : "PeeringOptions.SigningKey and SigningKeyFile are both set; set only one.");
            return null;
        }

        string? text = options.SigningKey;
        var field = nameof(PeeringOptions.SigningKey);
        if (options.SigningKeyFile is { } file)
        {
            field = nameof(PeeringOptions.SigningKeyFile);
            try
            {
                text = File.ReadLines(file).FirstOrDefault();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                errors.Add($"PeeringOptions.SigningKeyFile {SafeText.Quote(file)} cannot be read: {ex.Message}");
                return null;
            }
        }

        try
        {
            using var identity = NodeIdentity.FromBase64(text ?? string.Empty, "PeeringOptions." + field);
            return identity.PublicKey;
        }
        catch (FormatException ex)
        {
            errors.Add(ex.Message);
            return null;
        }
    }

    private static bool IsHttpUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    private static void Positive(TimeSpan value, string field, List<string> errors)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"PeeringOptions.{field} is {value}; it must be positive.");
        }
    }
}
