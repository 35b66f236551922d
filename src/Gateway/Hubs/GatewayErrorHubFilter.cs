using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Hubs;

/// <summary>
/// Turns every failure of a hub method into a <see cref="HubException"/> "<c>{code}: {message}</c>", counted in
/// <c>gateway.errors</c> (except <c>cancelled</c>: its connection is gone, nobody receives it).
/// </summary>
internal sealed class GatewayErrorHubFilter(GatewayMetrics metrics, ILogger<GatewayErrorHubFilter> logger) : IHubFilter
{
    public const string InternalError = "internal_error";

    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext,
        Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext);
        }
        catch (GatewayException e)
        {
            metrics.ErrorAnswered(e.Code, ErrorSurface.Hub);
            throw new HubException($"{e.Code}: {e.Message}");
        }
        catch (HubException)
        {
            throw;
        }
        catch (OperationCanceledException) when (invocationContext.Context.ConnectionAborted.IsCancellationRequested)
        {
            throw new HubException("cancelled: the connection closed.");
        }
        catch (Exception e) when (DependencyFailures.IsUnavailable(e))
        {
            HubsLog.DependencyUnavailable(logger, invocationContext.HubMethodName, e.GetType().Name, e.Message);
            metrics.ErrorAnswered(GatewayErrorCodes.ServiceUnavailable, ErrorSurface.Hub);
            throw new HubException($"{GatewayErrorCodes.ServiceUnavailable}: The gateway's session store or Redis did not answer; retry shortly.");
        }
        catch (Exception e)
        {
            HubsLog.HubMethodFailed(logger, invocationContext.HubMethodName, e);
            metrics.ErrorAnswered(InternalError, ErrorSurface.Hub);
            throw new HubException($"{InternalError}: The gateway failed unexpectedly; see its log.");
        }
    }
}
