using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Auth;

/// <summary>What a valid token says.</summary>
internal sealed record JwtIdentity(string UserId, IReadOnlyList<string> Workspaces, DateTimeOffset ExpiresAt);

/// <summary>The outcome of <see cref="Hs256JwtValidator.Validate"/>: an identity, or why the token was refused.</summary>
internal readonly record struct JwtValidation(JwtIdentity? Identity, string? Failure)
{
    public static JwtValidation Fail(string reason) => new(null, reason);
}

/// <summary>
/// Validates compact JWS tokens signed with HMAC-SHA256, and nothing else: <c>alg</c> must be exactly <c>HS256</c>
/// (<c>none</c>, RS256 and every other algorithm are refused), segments must be strict unpadded base64url, the
/// signature is compared in constant time, <c>exp</c> and <c>sub</c> are required, <c>nbf</c>, <c>iss</c> and
/// <c>aud</c> are checked when present or configured.
/// </summary>
internal sealed class Hs256JwtValidator(IOptions<GatewayAuthOptions> options, TimeProvider time)
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 16 };
    private const int MaxWorkspaces = 256;

    private readonly byte[]? _key = options.Value.Jwt.KeyBytes();
    private readonly JwtOptions _options = options.Value.Jwt;

    public bool Enabled => _key is not null;

    public JwtValidation Validate(string token)
    {
        if (_key is null)
        {
            return JwtValidation.Fail("bearer tokens are not accepted (no Gateway:Auth:Jwt:SigningKey)");
        }

        if (token.Length > _options.MaxTokenLength)
        {
            return JwtValidation.Fail($"token longer than {_options.MaxTokenLength} characters");
        }

        var parts = token.Split('.');
        if (parts.Length != 3 || parts[0].Length == 0 || parts[1].Length == 0 || parts[2].Length == 0)
        {
            return JwtValidation.Fail("not a compact JWS (header.payload.signature)");
        }

        if (!TryDecode(parts[0], out var headerBytes) || !TryDecode(parts[1], out var payloadBytes)
            || !TryDecode(parts[2], out var signature))
        {
            return JwtValidation.Fail("malformed base64url");
        }

        var headerFailure = CheckHeader(headerBytes);
        if (headerFailure is not null)
        {
            return JwtValidation.Fail(headerFailure);
        }

        var signed = Encoding.ASCII.GetBytes(string.Concat(parts[0], ".", parts[1]));
        var expected = HMACSHA256.HashData(_key, signed);
        if (!CryptographicOperations.FixedTimeEquals(expected, signature))
        {
            return JwtValidation.Fail("bad signature");
        }

        return ReadClaims(payloadBytes);
    }

    private static string? CheckHeader(byte[] headerBytes)
    {
        try
        {
            using var header = JsonDocument.Parse(headerBytes, Strict);
            var root = header.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "header is not a JSON object";
            }

            if (!root.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || !alg.ValueEquals("HS256"))
            {
                return "alg must be HS256";
            }

            if (root.TryGetProperty("typ", out var typ)
                && (typ.ValueKind != JsonValueKind.String || !string.Equals(typ.GetString(), "JWT", StringComparison.OrdinalIgnoreCase)))
            {
                return "typ must be JWT when present";
            }

            if (root.TryGetProperty("crit", out _))
            {
                return "critical header extensions are not supported";
            }

            return null;
        }
        catch (JsonException)
        {
            return "header is not valid JSON";
        }
    }

    private JwtValidation ReadClaims(byte[] payloadBytes)
    {
        JsonDocument payload;
        try
        {
            payload = JsonDocument.Parse(payloadBytes, Strict);
        }
        catch (JsonException)
        {
            return JwtValidation.Fail("payload is not valid JSON");
        }

        using (payload)
        {
            var root = payload.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return JwtValidation.Fail("payload is not a JSON object");
            }

            var now = time.GetUtcNow();
            var skew = _options.ClockSkew;

            if (!root.TryGetProperty("exp", out var expElement) || !TryReadTime(expElement, out var exp))
            {
                return JwtValidation.Fail("exp (expiry, seconds since epoch) is required");
            }

            if (now > exp + skew)
            {
                return JwtValidation.Fail("token expired");
            }

            if (root.TryGetProperty("nbf", out var nbfElement))
            {
                if (!TryReadTime(nbfElement, out var nbf))
                {
                    return JwtValidation.Fail("nbf must be a number of seconds since epoch");
                }

                if (now + skew < nbf)
                {
                    return JwtValidation.Fail("token not valid yet (nbf)");
                }
            }

            if (!root.TryGetProperty("sub", out var sub) || sub.ValueKind != JsonValueKind.String
                || !Identifiers.IsValidUserId(sub.GetString()))
            {
                return JwtValidation.Fail("sub (the user id) is required: " + Identifiers.UserIdRule);
            }

            if (!string.IsNullOrEmpty(_options.Issuer)
                && (!root.TryGetProperty("iss", out var iss) || iss.ValueKind != JsonValueKind.String || !iss.ValueEquals(_options.Issuer)))
            {
                return JwtValidation.Fail("wrong or missing iss");
            }

            if (!string.IsNullOrEmpty(_options.Audience) && !HasAudience(root, _options.Audience))
            {
                return JwtValidation.Fail("wrong or missing aud");
            }

            var workspaces = new List<string>();
            if (root.TryGetProperty("ws", out var ws))
            {
                if (ws.ValueKind != JsonValueKind.Array || ws.GetArrayLength() > MaxWorkspaces)
                {
                    return JwtValidation.Fail($"ws must be an array of at most {MaxWorkspaces} workspace ids");
                }

                foreach (var item in ws.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String || !Identifiers.IsValidWorkspace(item.GetString()))
                    {
                        return JwtValidation.Fail("ws entries " + Identifiers.WorkspaceRule);
                    }

                    workspaces.Add(item.GetString()!);
                }
            }

            return new JwtValidation(new JwtIdentity(sub.GetString()!, workspaces.Distinct(StringComparer.Ordinal).ToList(), exp), null);
        }
    }

    private static bool HasAudience(JsonElement root, string audience)
    {
        if (!root.TryGetProperty("aud", out var aud))
        {
            return false;
        }

        return aud.ValueKind switch
        {
            JsonValueKind.String => aud.ValueEquals(audience),
            JsonValueKind.Array => aud.EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && a.ValueEquals(audience)),
            _ => false,
        };
    }

    private static bool TryReadTime(JsonElement element, out DateTimeOffset value)
    {
        value = default;
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetDouble(out var seconds)
            || double.IsNaN(seconds) || seconds < 0 || seconds > 253_402_300_799)
        {
            return false;
        }

        value = DateTimeOffset.UnixEpoch.AddSeconds(seconds);
        return true;
    }

    /// <summary>Strict base64url: only <c>A–Z a–z 0–9 - _</c>, no padding, and canonical (unused bits zero).</summary>
    internal static bool TryDecode(string segment, out byte[] bytes)
    {
        bytes = [];
        if (segment.Length % 4 == 1)
        {
            return false;
        }

        foreach (var c in segment)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'))
            {
                return false;
            }
        }

        try
        {
            bytes = Base64Url.DecodeFromChars(segment);
        }
        catch (FormatException)
        {
            return false;
        }

        return string.Equals(Base64Url.EncodeToString(bytes), segment, StringComparison.Ordinal);
    }
}
