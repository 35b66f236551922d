using OpencodeGateway.Auth;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Limits.Internal;

/// <summary>
/// The hub's door, before any upgrade: <see cref="LimitsOptions.ConnectionsPerNode"/> (503: another node may have room)
/// and <see cref="LimitsOptions.ConnectionsPerUser"/> (429). A negotiation is refused when the connection after it would
/// be; a connect request (the WebSocket, or a Server-Sent Events or long-polling GET: clients behind a load balancer
/// skip negotiation) takes its slots for as long as it lasts, which is the connection's life for a WebSocket or an
/// event stream, and one poll for long polling. Kestrel's <c>MaxConcurrentUpgradedConnections</c> backs the node's cap.
/// </summary>
internal sealed class HubConnectionLimit(UserLimits limits)
{
    private int _connections;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var negotiate = context.Request.Path.Value?.EndsWith("/negotiate", StringComparison.Ordinal) == true;
        var connect = !negotiate && HttpMethods.IsGet(context.Request.Method);
        if (!negotiate && !connect)
        {
            await next(context); // a long-polling or event-stream client's messages
            return;
        }

        if ((connect ? Interlocked.Increment(ref _connections) : Volatile.Read(ref _connections) + 1) > limits.Options.ConnectionsPerNode)
        {
            if (connect)
            {
                Interlocked.Decrement(ref _connections);
            }

            await ProblemWriter.WriteAsync(context, limits.NodeFull());
            return;
        }

        IAsyncDisposable? slot = null;
        try
        {
            // Anonymous: the hub's authorization answers 401.
            if (context.User.Identity?.IsAuthenticated == true)
            {
                var user = GatewayUser.From(context.User);
                if (negotiate)
                {
                    await limits.CheckConnectionAsync(user, context.RequestAborted);
                }
                else
                {
                    slot = await limits.TakeConnectionAsync(user, context.RequestAborted);
                }
            }
        }
        catch (GatewayException e)
        {
            if (connect)
            {
                Interlocked.Decrement(ref _connections);
            }

            await ProblemWriter.WriteAsync(context, e);
            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            if (connect)
            {
                Interlocked.Decrement(ref _connections);
            }

            if (slot is not null)
            {
                await slot.DisposeAsync();
            }
        }
    }
}
