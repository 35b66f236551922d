using System.Buffers.Text;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Auth;

/// <summary>
/// An identity provider on a loopback port, over plain HTTP: an OIDC discovery document and a JWKS whose keys a test
/// can replace (rotation), and tokens signed with RS256 or ES256 keys of its own.
/// </summary>
public sealed class FakeIdentityProvider : IAsyncDisposable
{
    private WebApplication _app = null!;
    private volatile SigningKey[] _published = [];
    private int _jwksRequests;

    private FakeIdentityProvider()
    {
    }

    /// <summary>The issuer, which is also the authority: <c>http://127.0.0.1:port/</c>.</summary>
    public string Issuer { get; private set; } = "";

    public int JwksRequests => Volatile.Read(ref _jwksRequests);

    public static async Task<FakeIdentityProvider> StartAsync(params SigningKey[] published)
    {
        var idp = new FakeIdentityProvider { _published = published };
        (idp._app, var address) = await LoopbackApp.StartAsync(idp.Map);
        idp.Issuer = address.TrimEnd('/') + "/";
        return idp;
    }

    /// <summary>Replaces the keys the JWKS lists.</summary>
    public void Publish(params SigningKey[] keys) => _published = keys;

    private void Map(WebApplication app)
    {
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = Issuer,
            ["jwks_uri"] = Issuer + "jwks",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256", "ES256" },
        }));
        app.MapGet("/jwks", () =>
        {
            Interlocked.Increment(ref _jwksRequests);
            return Results.Json(new { keys = _published.Select(k => k.PublicJwk()).ToArray() });
        });
    }

    /// <summary>A token with the usual claims of an access token; <paramref name="claims"/> adds or replaces members.</summary>
    public string Mint(SigningKey key, string subject = "alice", string audience = "opencode-gateway", string? issuer = null,
        TimeSpan? lifetime = null, IDictionary<string, object>? claims = null)
    {
        var now = DateTime.UtcNow;
        var payload = new Dictionary<string, object> { ["sub"] = subject };
        foreach (var (name, value) in claims ?? new Dictionary<string, object>())
        {
            payload[name] = value;
        }

        var expires = now + (lifetime ?? TimeSpan.FromMinutes(10));
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Issuer,
            Audience = audience,
            IssuedAt = expires < now ? expires.AddMinutes(-10) : now,
            NotBefore = expires < now ? expires.AddMinutes(-10) : now,
            Expires = expires,
            Claims = payload,
            SigningCredentials = key.Credentials,
        });
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>An asymmetric signing key of the <see cref="FakeIdentityProvider"/>, with its public JWK.</summary>
public sealed class SigningKey
{
    private readonly AsymmetricAlgorithm _key;

    private SigningKey(AsymmetricAlgorithm key, SecurityKey securityKey, string algorithm)
    {
        _key = key;
        securityKey.KeyId = Kid;
        Credentials = new SigningCredentials(securityKey, algorithm);
    }

    public string Kid { get; } = "k-" + Guid.NewGuid().ToString("N")[..8];
    public SigningCredentials Credentials { get; }

    public static SigningKey Rsa()
    {
        var rsa = RSA.Create(2048);
        return new SigningKey(rsa, new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256);
    }

    public static SigningKey EcdsaP256()
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new SigningKey(ec, new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256);
    }

    /// <summary>The public key as SubjectPublicKeyInfo DER, and as PEM text: what an attacker can read and misuse.</summary>
    public byte[] PublicKeyDer => _key.ExportSubjectPublicKeyInfo();

    public string PublicKeyPem => _key.ExportSubjectPublicKeyInfoPem();

    public Dictionary<string, string> PublicJwk()
    {
        switch (_key)
        {
            case RSA rsa:
                var rp = rsa.ExportParameters(includePrivateParameters: false);
                return new() { ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = Kid,
                    ["n"] = Base64Url.EncodeToString(rp.Modulus), ["e"] = Base64Url.EncodeToString(rp.Exponent) };
            case ECDsa ec:
                var ep = ec.ExportParameters(includePrivateParameters: false);
                return new() { ["kty"] = "EC", ["use"] = "sig", ["alg"] = "ES256", ["kid"] = Kid, ["crv"] = "P-256",
                    ["x"] = Base64Url.EncodeToString(ep.Q.X), ["y"] = Base64Url.EncodeToString(ep.Q.Y) };
            default:
                throw new NotSupportedException(_key.GetType().Name);
        }
    }
}
