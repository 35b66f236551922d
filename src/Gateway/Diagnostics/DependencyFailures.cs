using System.Data.Common;
using StackExchange.Redis;

namespace OpencodeGateway.Diagnostics;

/// <summary>Failures that mean a service the gateway depends on did not answer, not that the gateway is wrong.</summary>
public static class DependencyFailures
{
    /// <summary>
    /// The session store could not be reached or gave up (a transient database error), or Redis did not answer (not
    /// connected, timed out, or a bounded wait on it ran out): the caller is told to retry
    /// (<c>service_unavailable</c>), and it is logged as a warning without a stack trace.
    /// </summary>
    public static bool IsUnavailable(Exception e) => e is DbException { IsTransient: true } or RedisConnectionException
        or RedisTimeoutException or TimeoutException || (e.InnerException is { } inner && IsUnavailable(inner));
}
