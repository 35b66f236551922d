using System.Diagnostics;

namespace OpencodeGateway.Diagnostics;

/// <summary>
/// The gateway's traces (activity source <c>OpencodeGateway</c>): hub joins and prompts, snapshot builds, upstream REST
/// calls and event-stream reconnects. Activities exist only while something listens (OTLP export configured).
/// </summary>
public static class GatewayTelemetry
{
    public const string ActivitySourceName = "OpencodeGateway";

    private static readonly ActivitySource Source = new(ActivitySourceName);

    /// <summary>Starts an activity tagged with the upstream and session it concerns; null when nobody listens.</summary>
    public static Activity? StartActivity(string name, string? upstream = null, string? sessionId = null)
    {
        var activity = Source.StartActivity(name, ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("gateway.upstream", upstream);
            activity.SetTag("gateway.session_id", sessionId);
        }

        return activity;
    }

    /// <summary>Marks the activity failed with the exception and, when known, the gateway's error code.</summary>
    public static void RecordError(this Activity? activity, Exception exception, string? code = null)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, exception.Message);
        activity.SetTag("gateway.error.code", code);
        activity.AddException(exception);
    }
}
