using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Upstreams.Internal;

/// <summary>
/// Encrypts the passwords of registered upstreams for the store with AES-256-GCM under
/// <see cref="UpstreamRegistryOptions.SecretKey"/>, bound to the upstream's id (a sealed password copied to another row
/// does not open): <c>v1.{key id}.{base64url(nonce | ciphertext | tag)}</c>, the key id being the first 4 bytes of the
/// key's SHA-256, so a node with another key says so instead of failing blindly. A reader of the database without the
/// key learns nothing but the password's length.
/// </summary>
internal sealed class UpstreamSecrets
{
    private const string Version = "v1";
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private readonly byte[]? _key;
    private readonly string? _keyId;

    public UpstreamSecrets(IOptions<UpstreamRegistryOptions> options)
    {
        if (options.Value.SecretKey is { } key && !string.IsNullOrWhiteSpace(key))
        {
            _key = UpstreamRegistryOptionsValidator.DecodeKey(key);
            _keyId = _key is null ? null : Convert.ToHexStringLower(SHA256.HashData(_key).AsSpan(0, 4));
        }
    }

    /// <summary>Whether a key is configured, so passwords can be sealed and opened.</summary>
    public bool HasKey => _key is not null;

    public string Seal(string upstreamId, string password)
    {
        var key = _key ?? throw new InvalidOperationException($"{UpstreamRegistryOptions.SectionName}:SecretKey is not set.");
        var plain = Encoding.UTF8.GetBytes(password);
        var sealedBytes = new byte[NonceBytes + plain.Length + TagBytes];
        var nonce = sealedBytes.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceBytes, plain.Length), sealedBytes.AsSpan(NonceBytes + plain.Length), Encoding.UTF8.GetBytes(upstreamId));
        return $"{Version}.{_keyId}.{Base64Url.EncodeToString(sealedBytes)}";
    }

    /// <summary>The password sealed for <paramref name="upstreamId"/>; a <see cref="CryptographicException"/> saying why when it cannot be opened here.</summary>
    public string Open(string upstreamId, string sealedPassword)
    {
        var parts = sealedPassword.Split('.');
        if (parts.Length != 3 || parts[0] != Version)
        {
            throw new CryptographicException("the stored password is not in a form this gateway reads");
        }

        if (_key is null)
        {
            throw new CryptographicException($"its password is encrypted and {UpstreamRegistryOptions.SectionName}:SecretKey is not set on this node");
        }

        if (parts[1] != _keyId)
        {
            throw new CryptographicException($"its password was encrypted with another {UpstreamRegistryOptions.SectionName}:SecretKey (key id {parts[1]}, this node's {_keyId})");
        }

        byte[] sealedBytes;
        try
        {
            sealedBytes = Base64Url.DecodeFromChars(parts[2]);
        }
        catch (FormatException)
        {
            throw new CryptographicException("the stored password is not valid base64url");
        }

        if (sealedBytes.Length < NonceBytes + TagBytes)
        {
            throw new CryptographicException("the stored password is truncated");
        }

        var plain = new byte[sealedBytes.Length - NonceBytes - TagBytes];
        using var aes = new AesGcm(_key, TagBytes);
        aes.Decrypt(sealedBytes.AsSpan(0, NonceBytes), sealedBytes.AsSpan(NonceBytes, plain.Length), sealedBytes.AsSpan(NonceBytes + plain.Length),
            plain, Encoding.UTF8.GetBytes(upstreamId));
        return Encoding.UTF8.GetString(plain);
    }
}
