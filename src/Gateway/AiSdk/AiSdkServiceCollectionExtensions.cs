using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.AiSdk;

public static class AiSdkServiceCollectionExtensions
{
    /// <summary>Adds what <c>/api/ai-sdk/chat</c> needs (mapped by <c>MapOpencodeGateway</c>).</summary>
    public static IServiceCollection AddGatewayAiSdk(this IServiceCollection services)
    {
        services.TryAddSingleton<AiSdkChats>();
        services.TryAddSingleton<AiSdkChatStreams>();
        return services;
    }

    /// <summary>Maps <c>/api/ai-sdk/chat</c> (the AI SDK's UI message stream protocol).</summary>
    public static IEndpointRouteBuilder MapGatewayAiSdk(this IEndpointRouteBuilder endpoints) => endpoints.MapAiSdkChat();
}
