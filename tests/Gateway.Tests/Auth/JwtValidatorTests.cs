using OpencodeGateway.Testing;
using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;

namespace Gateway.Tests.Auth;

public sealed class JwtValidatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 5, 1, 10, 0, 0, TimeSpan.Zero);
    private const string Key = TestTokens.DevSigningKey;

    private static Hs256JwtValidator Validator(Action<JwtOptions>? configure = null)
    {
        var options = new GatewayAuthOptions { Jwt = { SigningKey = Key } };
        configure?.Invoke(options.Jwt);
        return new Hs256JwtValidator(Options.Create(options), new FixedTime(Now));
    }

    private static string Payload(string extra = "", long? exp = null) =>
        $$"""{"sub":"alice","exp":{{exp ?? Now.AddMinutes(5).ToUnixTimeSeconds()}}{{extra}}}""";

    private static string Refusal(string token, Hs256JwtValidator? validator = null)
    {
        var result = (validator ?? Validator()).Validate(token);
        Assert.Null(result.Identity);
        return result.Failure!;
    }

    [Fact]
    public void A_well_formed_token_yields_the_user_and_workspaces()
    {
        var token = TestTokens.Mint("alice", ["w1", "w2"], now: Now);

        var result = Validator().Validate(token);

        Assert.Null(result.Failure);
        Assert.Equal("alice", result.Identity!.UserId);
        Assert.Equal(["w1", "w2"], result.Identity.Workspaces);
        Assert.Equal(Now.AddHours(1), result.Identity.ExpiresAt);
    }

    [Fact]
    public void A_tampered_payload_fails_the_signature()
    {
        var parts = TestTokens.Mint("alice", now: Now).Split('.');
        var forged = TestTokens.Encode(Payload(""","ws":["admins"]"""));

        Assert.Equal("bad signature", Refusal($"{parts[0]}.{forged}.{parts[2]}"));
    }

    [Fact]
    public void A_token_signed_with_another_key_is_refused() =>
        Assert.Equal("bad signature", Refusal(TestTokens.Mint("alice", signingKey: "another-key-of-at-least-32-bytes-length!!", now: Now)));

    [Fact]
    public void Expiry_and_not_before_are_enforced_with_the_clock_skew()
    {
        var header = """{"alg":"HS256","typ":"JWT"}""";
        Assert.Equal("token expired", Refusal(TestTokens.Sign(header, Payload(exp: Now.AddSeconds(-31).ToUnixTimeSeconds()))));
        Assert.Null(Validator().Validate(TestTokens.Sign(header, Payload(exp: Now.AddSeconds(-29).ToUnixTimeSeconds()))).Failure);
        var nbf = Now.AddSeconds(45).ToUnixTimeSeconds();
        Assert.Equal("token not valid yet (nbf)", Refusal(TestTokens.Sign(header, Payload($",\"nbf\":{nbf}"))));
        Assert.Null(Validator().Validate(TestTokens.Sign(header, Payload($",\"nbf\":{Now.AddSeconds(20).ToUnixTimeSeconds()}"))).Failure);
    }

    [Fact]
    public void Sub_and_exp_are_required()
    {
        var header = """{"alg":"HS256"}""";
        Assert.StartsWith("sub", Refusal(TestTokens.Sign(header, $$"""{"exp":{{Now.AddMinutes(5).ToUnixTimeSeconds()}}}""")));
        Assert.StartsWith("sub", Refusal(TestTokens.Sign(header, $$"""{"sub":"","exp":{{Now.AddMinutes(5).ToUnixTimeSeconds()}}}""")));
        Assert.StartsWith("exp", Refusal(TestTokens.Sign(header, """{"sub":"alice"}""")));
        Assert.StartsWith("exp", Refusal(TestTokens.Sign(header, """{"sub":"alice","exp":"tomorrow"}""")));
    }

    [Fact]
    public void Only_hs256_is_accepted()
    {
        var payload = TestTokens.Encode(Payload());
        Assert.Equal("alg must be HS256", Refusal($"{TestTokens.Encode("""{"alg":"none"}""")}.{payload}.x"
            .Replace(".x", "." + TestTokens.Encode("sig"))));
        Assert.Equal("not a compact JWS (header.payload.signature)", Refusal($"{TestTokens.Encode("""{"alg":"none"}""")}.{payload}."));
        Assert.Equal("alg must be HS256", Refusal(TestTokens.Sign("""{"alg":"RS256","typ":"JWT"}""", Payload())));
        Assert.Equal("alg must be HS256", Refusal(TestTokens.Sign("""{"alg":"hs256"}""", Payload())));
        Assert.Equal("alg must be HS256", Refusal(TestTokens.Sign("""{"typ":"JWT"}""", Payload())));
        Assert.Equal("typ must be JWT when present", Refusal(TestTokens.Sign("""{"alg":"HS256","typ":"JWE"}""", Payload())));
        Assert.Equal("header is not valid JSON", Refusal(TestTokens.Sign("""{"alg":"HS256","alg":"none"}""", Payload())));
    }

    [Fact]
    public void Oversized_tokens_are_refused_before_parsing()
    {
        var token = TestTokens.Sign("""{"alg":"HS256"}""", Payload($",\"pad\":\"{new string('a', 9000)}\""));
        Assert.StartsWith("token longer than 8192", Refusal(token));
    }

    [Fact]
    public void Base64url_must_be_strict()
    {
        var token = TestTokens.Mint("alice", now: Now);
        var parts = token.Split('.');
        Assert.Equal("malformed base64url", Refusal($"{parts[0]}=.{parts[1]}.{parts[2]}"));
        Assert.Equal("malformed base64url", Refusal($"{parts[0]}.{parts[1].Replace('-', '+').Replace('_', '/')}+.{parts[2]}"));
        Assert.Equal("malformed base64url", Refusal($"{parts[0]}.{parts[1]}.{parts[2]}!"));
        Assert.Equal("malformed base64url", Refusal($"{parts[0]}.{parts[1]}.{parts[2][..^1]}{NonCanonical(parts[2][^1])}"));
        Assert.Equal("not a compact JWS (header.payload.signature)", Refusal(token + ".extra"));
    }

    // A last character that decodes to the same bytes but with non-zero unused bits.
    private static char NonCanonical(char last)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return alphabet[alphabet.IndexOf(last) | 1];
    }

    [Fact]
    public void Issuer_and_audience_are_checked_when_configured()
    {
        var validator = Validator(o => { o.Issuer = "https://app.example"; o.Audience = "gateway"; });
        Assert.Equal("wrong or missing iss", Refusal(TestTokens.Mint("alice", now: Now, audience: "gateway"), validator));
        Assert.Equal("wrong or missing aud", Refusal(TestTokens.Mint("alice", now: Now, issuer: "https://app.example", audience: "other"), validator));
        Assert.Null(validator.Validate(TestTokens.Mint("alice", now: Now, issuer: "https://app.example", audience: "gateway")).Failure);
        Assert.Null(validator.Validate(TestTokens.Sign("""{"alg":"HS256"}""",
            Payload(""","iss":"https://app.example","aud":["x","gateway"]"""))).Failure);
    }

    [Fact]
    public void Workspaces_must_be_an_array_of_ids() =>
        Assert.StartsWith("ws must be", Refusal(TestTokens.Sign("""{"alg":"HS256"}""", Payload(""","ws":"team-a" """))));
}

internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
