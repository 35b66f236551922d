using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Delivery;

public static class OutboxServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Outbox</c> (validated at start) and replaces SignalR's default lifetime manager with one whose
    /// sends never wait on slow connections.
    /// </summary>
    public static ISignalRServerBuilder AddOutboxLifetimeManager(this ISignalRServerBuilder builder, IConfiguration configuration)
    {
        builder.Services.AddOptions<OutboxOptions>().Bind(configuration.GetSection(OutboxOptions.SectionName)).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OutboxOptions>, OutboxOptionsValidator>());
        builder.Services.Replace(ServiceDescriptor.Singleton(typeof(HubLifetimeManager<>), typeof(OutboxHubLifetimeManager<>)));
        return builder;
    }

    /// <summary>
    /// Gives every socket Kestrel accepts the send buffer of <see cref="OutboxOptions.SocketSendBufferBytes"/> (accepted
    /// sockets inherit the listening socket's).
    /// </summary>
    public static IWebHostBuilder UseBoundedSocketSendBuffers(this IWebHostBuilder builder, IConfiguration configuration)
    {
        var bytes = configuration.GetSection(OutboxOptions.SectionName).Get<OutboxOptions>()?.SocketSendBufferBytes ?? new OutboxOptions().SocketSendBufferBytes;
        return bytes <= 0 ? builder : builder.UseSockets(o => o.CreateBoundListenSocket = endpoint =>
        {
            var socket = Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
            socket.SendBufferSize = bytes;
            return socket;
        });
    }

    /// <summary>
    /// Scales the hubs out through SignalR's Redis backplane, with channels under <paramref name="channelPrefix"/>, on a
    /// multiplexer configured as the one <paramref name="connection"/> gives, keeping each connection's outbox under it
    /// (<see cref="RedisOutboxHubLifetimeManager{THub}"/>).
    /// </summary>
    public static IServiceCollection AddRedisOutboxBackplane(this IServiceCollection services,
        Func<IServiceProvider, string> channelPrefix, Func<IServiceProvider, Task<StackExchange.Redis.IConnectionMultiplexer>> connection)
    {
        services.AddOptions<Microsoft.AspNetCore.SignalR.StackExchangeRedis.RedisOptions>().Configure<IServiceProvider>((o, sp) =>
        {
            o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal(channelPrefix(sp));
            // The package names its channels after the hub alone and prefixes them only through its multiplexer's
            // ChannelPrefix (and disposes that multiplexer, unsubscribing everything first): it gets one of its own, with
            // the client's default backlog, as the package expects: its subscriptions at start wait for the connection
            // instead of failing (the package never tries a failed one again), and a late publish is harmless.
            o.ConnectionFactory = async log =>
            {
                var node = await connection(sp);
                var configuration = StackExchange.Redis.ConfigurationOptions.Parse(node.Configuration);
                configuration.ChannelPrefix = o.Configuration.ChannelPrefix;
                configuration.AbortOnConnectFail = false;
                return await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(configuration, log);
            };
        });
        services.Replace(ServiceDescriptor.Singleton(typeof(HubLifetimeManager<>), typeof(RedisOutboxHubLifetimeManager<>)));
        return services;
    }
}
