using System.Security.Cryptography;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;
using OpencodeGateway.Upstreams.Internal;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// The upstreams admins register and remove at run time: kept in the store (<see cref="IUpstreamStore"/>), read into the
/// <see cref="UpstreamRegistry"/> at start, every <see cref="UpstreamRegistryOptions.RefreshInterval"/> (what other
/// nodes changed) and at once after a change made here. Passwords go to the store sealed (<see cref="UpstreamSecrets"/>).
/// </summary>
internal sealed class UpstreamRegistrations(
    UpstreamRegistry registry,
    IUpstreamStore store,
    UpstreamSecrets secrets,
    IOptions<UpstreamRegistryOptions> options,
    TimeProvider time,
    ILogger<UpstreamRegistrations> logger) : BackgroundService
{
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    // Rows already reported as unusable, so each is logged once (by what it was registered as).
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    /// <summary>Reads the registered upstreams before the host goes on starting: the pumps and the first requests see them.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            UpstreamsLog.RefreshFailed(logger, e.Message, 0);
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await RefreshAsync(stoppingToken);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    UpstreamsLog.RefreshFailed(logger, e.Message, registry.All.Count(u => !u.Configured));
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>
    /// Registers an upstream (the caller is an admin): checks every field, refuses an id the configuration or the
    /// store has (<c>conflict</c>), stores it and serves it on this node at once.
    /// </summary>
    public async Task<OpencodeClient> RegisterAsync(RegisterUpstreamRequest request, CancellationToken ct)
    {
        Check("id", UpstreamRules.IdProblem(request.Id));
        Check("baseUrl", UpstreamRules.BaseUrlProblem(request.BaseUrl));
        Check("directory", UpstreamRules.DirectoryProblem(request.Directory));
        Check("password", UpstreamRules.PasswordProblem(request.Password));
        if (request.Password is not null && !secrets.HasKey)
        {
            throw GatewayException.Invalid("password",
                $"cannot be stored: this gateway has no {UpstreamRegistryOptions.SectionName}:SecretKey to encrypt it with.");
        }

        if (registry.TryGet(request.Id, out var existing))
        {
            throw Conflict(existing);
        }

        var row = new RegisteredUpstream(request.Id, request.BaseUrl, request.Directory,
            request.Password is null ? null : secrets.Seal(request.Id, request.Password), Truncate(time.GetUtcNow()));
        if (!await store.TryAddUpstreamAsync(row, ct))
        {
            throw new GatewayException(GatewayErrorCodes.Conflict, $"Upstream '{request.Id}' is registered already.");
        }

        UpstreamsLog.Registered(logger, request.Id, request.BaseUrl);
        await RefreshAsync(ct);
        return registry.TryGet(request.Id, out var client) ? client
            : throw new GatewayException(GatewayErrorCodes.Conflict, $"Upstream '{request.Id}' was removed again meanwhile.");
    }

    /// <summary>Removes a registered upstream; a configured one is refused (<c>conflict</c>), an unknown one is <c>upstream_not_found</c>.</summary>
    public async Task RemoveAsync(string upstreamId, CancellationToken ct)
    {
        if (registry.TryGet(upstreamId, out var existing) && existing.Configured)
        {
            throw new GatewayException(GatewayErrorCodes.Conflict,
                $"Upstream '{upstreamId}' is configured ({UpstreamsOptions.SectionName}): remove it from the configuration instead.");
        }

        if (UpstreamRules.IdProblem(upstreamId) is not null || !await store.RemoveUpstreamAsync(upstreamId, ct))
        {
            throw GatewayException.UpstreamNotFound(upstreamId);
        }

        UpstreamsLog.Removed(logger, upstreamId);
        await RefreshAsync(ct);
    }

    /// <summary>Reads the registered upstreams from the store and makes the registry hold exactly those this node can use.</summary>
    public async Task RefreshAsync(CancellationToken ct)
    {
        await _refreshing.WaitAsync(ct);
        try
        {
            var rows = await store.ListUpstreamsAsync(ct);
            var usable = new List<Registration>(rows.Count);
            foreach (var row in rows)
            {
                var identity = $"{row.CreatedAt.UtcTicks}|{row.BaseUrl}|{row.Directory}|{row.SealedPassword}";
                if (registry.TryGet(row.Id, out var known) && known.Configured)
                {
                    ReportOnce(row.Id, identity, $"its id is configured ({UpstreamsOptions.SectionName}), which wins");
                    continue;
                }

                string? password = null;
                try
                {
                    password = row.SealedPassword is { } sealedPassword ? secrets.Open(row.Id, sealedPassword) : null;
                }
                catch (CryptographicException e)
                {
                    ReportOnce(row.Id, identity, e.Message);
                    continue;
                }

                usable.Add(new Registration(new UpstreamOptions { Id = row.Id, BaseUrl = row.BaseUrl, Directory = row.Directory, Password = password },
                    identity));
            }

            if (registry.SetRegistered(usable))
            {
                UpstreamsLog.Changed(logger, usable.Count, string.Join(",", usable.Select(u => u.Options.Id)));
            }
        }
        finally
        {
            _refreshing.Release();
        }
    }

    public override void Dispose()
    {
        _refreshing.Dispose();
        base.Dispose();
    }

    private void ReportOnce(string upstreamId, string identity, string reason)
    {
        if (_reported.Add(identity))
        {
            UpstreamsLog.Unusable(logger, upstreamId, reason);
        }
    }

    private static void Check(string field, string? problem)
    {
        if (problem is not null)
        {
            throw GatewayException.Invalid(field, problem);
        }
    }

    private static GatewayException Conflict(OpencodeClient existing) => new(GatewayErrorCodes.Conflict, existing.Configured
        ? $"Upstream '{existing.UpstreamId}' is configured ({UpstreamsOptions.SectionName})."
        : $"Upstream '{existing.UpstreamId}' is registered already.");

    // Databases keep microseconds: the identity compares what the store gives back.
    private static DateTimeOffset Truncate(DateTimeOffset value) => new(value.UtcTicks - value.UtcTicks % 10, TimeSpan.Zero);
}
