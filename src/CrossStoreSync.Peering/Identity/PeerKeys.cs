using NSec.Cryptography;

namespace CrossStoreSync.Peering;

/// <summary>Ed25519 keys for node identities.</summary>
public static class PeerKeys
{
    /// <summary>The length of a private key seed and of a public key, in bytes.</summary>
    public const int KeyLength = 32;

    /// <summary>Creates a new key pair: the private key for this node's <c>SigningKey</c>, the public key for its peers' configuration.</summary>
    /// <returns>Both keys, base64.</returns>
    public static (string PrivateKey, string PublicKey) Generate()
    {
        using var key = Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return (Convert.ToBase64String(key.Export(KeyBlobFormat.RawPrivateKey)), Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
    }

    /// <summary>The public key of a base64 private key.</summary>
    /// <exception cref="FormatException">The text is not base64 of 32 bytes.</exception>
    public static string GetPublicKey(string privateKey)
    {
        using var identity = NodeIdentity.FromBase64(privateKey, "privateKey");
        return Convert.ToBase64String(identity.PublicKey);
    }
}

/// <summary>This node's signing key. The private key never leaves this object and is never formatted.</summary>
internal sealed class NodeIdentity : IDisposable
{
    private readonly Key _key;

    private NodeIdentity(Key key)
    {
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    public byte[] PublicKey { get; }

    public static NodeIdentity FromBase64(string text, string field)
    {
        var seed = DecodeKey(text, field);
        try
        {
            return new NodeIdentity(Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey));
        }
        finally
        {
            Array.Clear(seed);
        }
    }

    /// <summary>Decodes base64 of exactly 32 bytes; the message names the field, never the value (it may be a secret).</summary>
    public static byte[] DecodeKey(string? text, string field)
    {
        var bytes = new byte[64];
        if (string.IsNullOrWhiteSpace(text) || !Convert.TryFromBase64String(text.Trim(), bytes, out var length) || length != PeerKeys.KeyLength)
        {
            throw new FormatException($"{field} must be base64 of a {PeerKeys.KeyLength}-byte Ed25519 key.");
        }

        return bytes.AsSpan(0, length).ToArray();
    }

    public byte[] Sign(ReadOnlySpan<byte> data) => SignatureAlgorithm.Ed25519.Sign(_key, data);

    public static bool Verify(byte[] publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != SignatureAlgorithm.Ed25519.SignatureSize
            || !NSec.Cryptography.PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key))
        {
            return false;
        }

        return SignatureAlgorithm.Ed25519.Verify(key!, data, signature);
    }

    public void Dispose() => _key.Dispose();

    public override string ToString() => "NodeIdentity(" + Convert.ToBase64String(PublicKey) + ")";
}
