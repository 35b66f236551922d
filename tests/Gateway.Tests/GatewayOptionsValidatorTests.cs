using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Tests;

public class GatewayOptionsValidatorTests
{
    private static GatewayOptions Valid() => new() { Upstreams = [new UpstreamOptions { Id = "local", BaseUrl = "http://127.0.0.1:4096" }] };

    [Fact]
    public void Accepts_a_valid_configuration()
    {
        Assert.True(new GatewayOptionsValidator().Validate(null, Valid()).Succeeded);
    }

    [Theory]
    [InlineData("not a url", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("ftp://host", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("/relative", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("http://host:4096/?x=1", "Gateway:Upstreams:0:BaseUrl")]
    public void Rejects_a_bad_url_naming_the_key(string url, string key)
    {
        var options = Valid();
        options.Upstreams[0].BaseUrl = url;
        var result = new GatewayOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.StartsWith(key + ":", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_duplicate_ids_and_an_empty_list()
    {
        var options = Valid();
        options.Upstreams.Add(new UpstreamOptions { Id = "local", BaseUrl = "http://127.0.0.1:4097" });
        Assert.StartsWith("Gateway:Upstreams:1:Id: duplicate", Assert.Single(new GatewayOptionsValidator().Validate(null, options).Failures!), StringComparison.Ordinal);

        var empty = new GatewayOptions();
        Assert.StartsWith("Gateway:Upstreams:", Assert.Single(new GatewayOptionsValidator().Validate(null, empty).Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("x/y")]
    public void Rejects_bad_ids(string id)
    {
        var options = Valid();
        options.Upstreams[0].Id = id;
        Assert.StartsWith("Gateway:Upstreams:0:Id:", Assert.Single(new GatewayOptionsValidator().Validate(null, options).Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_nonsense_limits()
    {
        var options = Valid();
        options.Replay.MaxEvents = 0;
        options.Outbox.MaxQueuedBytes = 10;
        options.Streaming.StallTimeout = TimeSpan.Zero;
        var failures = new GatewayOptionsValidator().Validate(null, options).Failures!.ToList();
        Assert.Contains(failures, f => f.StartsWith("Gateway:Replay:MaxEvents:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Gateway:Outbox:MaxQueuedBytes:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Gateway:Streaming:StallTimeout:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_process_stops_with_one_line_naming_the_key()
    {
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try
        {
            var exit = await GatewayApplication.RunAsync(["--urls", "http://127.0.0.1:0", "--Gateway:Upstreams:0:BaseUrl=nope"]);
            Assert.Equal(2, exit);
        }
        finally
        {
            Console.SetError(original);
        }

        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Gateway:Upstreams:0:BaseUrl", line, StringComparison.Ordinal);
    }
}
