using System.Collections.Concurrent;
using Microsoft.AspNetCore.Authentication;
using OpencodeGateway.Auth;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Limits.Internal;

/// <summary>
/// Refuses the requests with credentials of a client address that failed to authenticate
/// <see cref="LimitsOptions.AuthFailuresPerMinute"/> times within a minute. The failures are counted where the limits
/// count (Redis in a cluster); once the count refuses one, this node refuses that address at once, without counting,
/// until the window allows one more, so a refused address costs no Redis call. (ASP.NET Core's rate limiter takes its
/// permit before a request runs: it cannot count outcomes such as a failed authentication.)
/// </summary>
internal sealed class AuthFailureThrottle(UserLimits limits, TimeProvider time)
{
    private const int SweepAbove = 10_000;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _refusedUntil = new(StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var address = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (_refusedUntil.TryGetValue(address, out var until))
        {
            var left = until - time.GetUtcNow();
            if (left > TimeSpan.Zero)
            {
                if (HasCredentials(context.Request))
                {
                    await ProblemWriter.WriteAsync(context, limits.AuthFailuresRefused(address, left));
                    return;
                }
            }
            else
            {
                _refusedUntil.TryRemove(new KeyValuePair<string, DateTimeOffset>(address, until));
            }
        }

        // The credentials' verdict, as the authentication middleware before this one had it (the handler keeps its
        // result for the request: asked again, it answers without verifying again).
        if (HasCredentials(context.Request) && (await context.AuthenticateAsync()).Failure is not null
            && await limits.CountAuthFailureAsync(address, context.RequestAborted) is { } wait)
        {
            if (_refusedUntil.Count > SweepAbove)
            {
                Sweep();
            }

            _refusedUntil[address] = time.GetUtcNow() + wait;
            await ProblemWriter.WriteAsync(context, limits.AuthFailuresRefused(address, wait));
            return;
        }

        await next(context);
    }

    private static bool HasCredentials(HttpRequest request) =>
        request.Headers.ContainsKey(GatewayAuthenticationSchemes.ApiKeyHeader) || GatewayAuthenticationSchemes.BearerToken(request) is not null;

    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (address, until) in _refusedUntil)
        {
            if (until <= now)
            {
                _refusedUntil.TryRemove(new KeyValuePair<string, DateTimeOffset>(address, until));
            }
        }
    }
}
