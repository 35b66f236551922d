using OpencodeGateway.Sequencing;
using OpencodeGateway.Delivery;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Tests;

public class OptionsValidatorTests
{
    private static UpstreamsOptions Valid() => new() { Upstreams = [new UpstreamOptions { Id = "local", BaseUrl = "http://127.0.0.1:4096" }] };

    [Fact]
    public void Accepts_a_valid_configuration()
    {
        Assert.True(new UpstreamsOptionsValidator().Validate(null, Valid()).Succeeded);
    }

    [Theory]
    [InlineData("not a url", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("ftp://host", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("/relative", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("http://host:4096/?x=1", "Gateway:Upstreams:0:BaseUrl")]
    [InlineData("http://opencode:secret@host:4096/", "Gateway:Upstreams:0:BaseUrl")]
    public void Rejects_a_bad_url_naming_the_key(string url, string key)
    {
        var options = Valid();
        options.Upstreams[0].BaseUrl = url;
        var result = new UpstreamsOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.StartsWith(key + ":", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_duplicate_ids_and_an_empty_list()
    {
        var options = Valid();
        options.Upstreams.Add(new UpstreamOptions { Id = "local", BaseUrl = "http://127.0.0.1:4097" });
        Assert.StartsWith("Gateway:Upstreams:1:Id: duplicate", Assert.Single(new UpstreamsOptionsValidator().Validate(null, options).Failures!), StringComparison.Ordinal);

        var empty = new UpstreamsOptions();
        Assert.StartsWith("Gateway:Upstreams:", Assert.Single(new UpstreamsOptionsValidator().Validate(null, empty).Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("x/y")]
    public void Rejects_bad_ids(string id)
    {
        var options = Valid();
        options.Upstreams[0].Id = id;
        Assert.StartsWith("Gateway:Upstreams:0:Id:", Assert.Single(new UpstreamsOptionsValidator().Validate(null, options).Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00:00:00.050", null, "Gateway:UpstreamRegistry:RefreshInterval:")]
    [InlineData("00:00:06", null, "Gateway:UpstreamRegistry:RefreshInterval:")]
    [InlineData("00:00:02", "not base64!", "Gateway:UpstreamRegistry:SecretKey:")]
    [InlineData("00:00:02", "AAAA", "Gateway:UpstreamRegistry:SecretKey:")]
    public void Rejects_a_bad_upstream_registry_setting_naming_the_key(string refresh, string? secretKey, string key)
    {
        var options = new UpstreamRegistryOptions { RefreshInterval = TimeSpan.Parse(refresh, System.Globalization.CultureInfo.InvariantCulture), SecretKey = secretKey };
        Assert.StartsWith(key, Assert.Single(new UpstreamRegistryOptionsValidator().Validate(null, options).Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")]
    public void Accepts_no_secret_key_or_the_base64_of_32_bytes(string? secretKey) =>
        Assert.True(new UpstreamRegistryOptionsValidator().Validate(null, new UpstreamRegistryOptions { SecretKey = secretKey }).Succeeded);

    [Fact]
    public void Rejects_nonsense_limits_naming_each_key()
    {
        Assert.StartsWith("Gateway:Replay:MaxEvents:",
            Assert.Single(new ReplayOptionsValidator().Validate(null, new ReplayOptions { MaxEvents = 0 }).Failures!), StringComparison.Ordinal);
        Assert.StartsWith("Gateway:Outbox:MaxQueuedBytes:",
            Assert.Single(new OutboxOptionsValidator().Validate(null, new OutboxOptions { MaxQueuedBytes = 10 }).Failures!), StringComparison.Ordinal);
        Assert.StartsWith("Gateway:Streaming:StallTimeout:",
            Assert.Single(new StreamingOptionsValidator().Validate(null, new StreamingOptions { StallTimeout = TimeSpan.Zero }).Failures!), StringComparison.Ordinal);
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
