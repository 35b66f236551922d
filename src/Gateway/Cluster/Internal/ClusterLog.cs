
namespace OpencodeGateway.Cluster.Internal;

/// <summary>Log lines of the cluster's Redis connection.</summary>
internal static partial class ClusterLog
{
    [LoggerMessage(40, LogLevel.Information, "Cluster node {NodeId}: Redis {Configuration} (connected: {Connected})")]
    public static partial void RedisConnecting(ILogger logger, string nodeId, string configuration, bool connected);

    [LoggerMessage(41, LogLevel.Warning, "Redis {EndPoint} unreachable ({Failure}); reconnecting")]
    public static partial void RedisLost(ILogger logger, string endPoint, string failure);

    [LoggerMessage(42, LogLevel.Information, "Redis {EndPoint} reachable again")]
    public static partial void RedisRestored(ILogger logger, string endPoint);
}
