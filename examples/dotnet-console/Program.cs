// Watches an opencode session through the gateway and prompts it from the console: the answer prints as it streams,
// permission requests and questions are asked here (the next line typed answers them), any other line is a prompt and
// an empty one aborts the run.
//
//   GATEWAY_TOKEN=$(scripts/mint-token.py alice) dotnet run --project examples/dotnet-console [-- SESSION_ID]
//
// GATEWAY_URL (default http://127.0.0.1:5000) names the gateway; without a session id a new session is created.
using System.Text.Json;
using OpencodeGateway.Client;

var gatewayUrl = Environment.GetEnvironmentVariable("GATEWAY_URL") ?? "http://127.0.0.1:5000";
var token = Environment.GetEnvironmentVariable("GATEWAY_TOKEN");
if (string.IsNullOrEmpty(token))
{
    Console.Error.WriteLine("Set GATEWAY_TOKEN (for the development gateway: scripts/mint-token.py alice).");
    return 2;
}

await using var client = new GatewayClient(new GatewayClientOptions
{
    Url = new Uri(new Uri(gatewayUrl), "hubs/session"),
    AccessTokenProvider = () => Task.FromResult<string?>(token),
});
client.StateChanged += (_, state) => Console.Error.WriteLine($"[{state}]");
await client.StartAsync();

var sessionId = args.Length > 0 ? args[0] : (await client.CreateSessionAsync()).GetProperty("id").GetString()!;
Console.Error.WriteLine($"session {sessionId}: type a prompt, an empty line aborts, Ctrl+D quits");

var printer = new AnswerPrinter();
await using var session = await client.WatchAsync(sessionId);
// Requests (permissions, questions) in the order they came; the next line typed answers the first one.
var pending = new Queue<JsonElement>();
var asked = new HashSet<string>(StringComparer.Ordinal);
session.Changed += (_, _) =>
{
    var view = session.View;
    printer.Print(view);
    lock (pending)
    {
        foreach (var request in view.Permissions.Concat(view.Questions).Where(r => asked.Add(r.GetProperty("id").GetString()!)))
        {
            pending.Enqueue(request);
            Console.Error.WriteLine($"\n[asks] {Describe(request)}");
        }
    }
};
printer.Print(session.View);

while (await Task.Run(Console.ReadLine) is { } line)
{
    JsonElement? request = null;
    lock (pending)
    {
        if (pending.TryDequeue(out var first))
        {
            request = first;
        }
    }

    try
    {
        if (request is { } answered)
        {
            await AnswerAsync(session, answered, line);
        }
        else if (line.Length == 0)
        {
            await session.AbortAsync();
        }
        else
        {
            await session.PromptAsync(line);
        }
    }
    catch (GatewayException e)
    {
        // A request answered elsewhere meanwhile, the prompt limit, …: say so and go on.
        Console.Error.WriteLine($"[{e.Code}] {e.Message}");
    }
}

return 0;

static string Describe(JsonElement request) => request.TryGetProperty("questions", out var questions)
    ? string.Join(" ", questions.EnumerateArray().Select(q =>
        $"{q.GetProperty("question").GetString()} [{string.Join(" / ", q.GetProperty("options").EnumerateArray().Select(o => o.GetProperty("label").GetString()))}]"))
        + (questions.GetArrayLength() > 1 ? " (answers separated by ;)" : "")
    : $"allow {request.GetProperty("permission").GetString()}? [y/N]";

// A question's answer is the option typed (one per question, separated by ;); a permission's is y (once) or not (reject).
static Task AnswerAsync(GatewaySession session, JsonElement request, string line)
{
    var id = request.GetProperty("id").GetString()!;
    return request.TryGetProperty("questions", out _)
        ? session.ReplyQuestionAsync(id, [.. line.Split(';').Select(answer => (IReadOnlyList<string>)[answer.Trim()])])
        : session.ReplyPermissionAsync(id, line.Trim() is "y" or "Y" ? "once" : "reject");
}

/// <summary>Prints the text parts as they grow: what is new of the part being streamed, a new line for a new part.</summary>
internal sealed class AnswerPrinter
{
    private readonly Lock _gate = new();
    private string? _partId;
    private int _printed;
    private string? _status;

    public void Print(SessionView view)
    {
        lock (_gate)
        {
            foreach (var part in view.Parts.Where(p => p.Type is null or "text" && p.Text is not null))
            {
                var text = part.Display()!;
                if (part.Id != _partId)
                {
                    // Parts before the one being printed were printed whole: only later ones are new.
                    if (_partId is not null && string.CompareOrdinal(part.Id, _partId) < 0)
                    {
                        continue;
                    }

                    Console.WriteLine();
                    Console.Write($"{view.Message(part.MessageId)?.Role}> ");
                    (_partId, _printed) = (part.Id, 0);
                }

                // A snapshot may replace text with text that is no continuation of what was printed: print it again.
                if (text.Length < _printed)
                {
                    Console.Write($"\n{view.Message(part.MessageId)?.Role}> ");
                    _printed = 0;
                }

                Console.Write(text[_printed..]);
                _printed = text.Length;
            }

            if (view.StatusType != _status)
            {
                _status = view.StatusType;
                Console.Error.WriteLine($"\n[{_status}]");
            }
        }
    }
}
