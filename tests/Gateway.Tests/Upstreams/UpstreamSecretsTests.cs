using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Upstreams.Internal;

namespace Gateway.Tests.Upstreams;

/// <summary>The passwords of registered upstreams as the store keeps them: encrypted, bound to their upstream, under one key.</summary>
public sealed class UpstreamSecretsTests
{
    private static UpstreamSecrets With(string? key) => new(Options.Create(new UpstreamRegistryOptions { SecretKey = key }));

    private static string Key(byte fill) => Convert.ToBase64String(Enumerable.Repeat(fill, 32).ToArray());

    [Fact]
    public void A_sealed_password_opens_again_for_its_upstream_and_shows_nothing_of_it()
    {
        var secrets = With(Key(7));
        const string password = "correct horse battery staple";

        var sealedOnce = secrets.Seal("sandbox-1", password);
        var sealedTwice = secrets.Seal("sandbox-1", password);

        Assert.Equal(password, secrets.Open("sandbox-1", sealedOnce));
        Assert.NotEqual(sealedOnce, sealedTwice); // a fresh nonce every time
        Assert.StartsWith("v1.", sealedOnce, StringComparison.Ordinal);
        Assert.DoesNotContain(password, sealedOnce, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes(password)), sealedOnce, StringComparison.Ordinal);
    }

    [Fact]
    public void It_does_not_open_for_another_upstream_with_another_key_without_a_key_or_altered()
    {
        var sealedPassword = With(Key(7)).Seal("sandbox-1", "pw");

        Assert.Throws<AuthenticationTagMismatchException>(() => With(Key(7)).Open("sandbox-2", sealedPassword));
        Assert.Contains("another Gateway:UpstreamRegistry:SecretKey", Assert.Throws<CryptographicException>(() => With(Key(8)).Open("sandbox-1", sealedPassword)).Message,
            StringComparison.Ordinal);
        Assert.Contains("Gateway:UpstreamRegistry:SecretKey is not set", Assert.Throws<CryptographicException>(() => With(null).Open("sandbox-1", sealedPassword)).Message,
            StringComparison.Ordinal);
        var altered = sealedPassword[..^2] + (sealedPassword[^2] == 'A' ? "B" : "A") + sealedPassword[^1];
        Assert.ThrowsAny<CryptographicException>(() => With(Key(7)).Open("sandbox-1", altered));
        Assert.ThrowsAny<CryptographicException>(() => With(Key(7)).Open("sandbox-1", "plain text"));
        Assert.False(With(null).HasKey);
        Assert.False(With("").HasKey);
    }
}
