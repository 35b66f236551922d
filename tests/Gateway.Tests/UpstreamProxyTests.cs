using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests;

/// <summary>The test proxy's count of event streams open at once, which the cluster tests assert on.</summary>
public class UpstreamProxyTests
{
    [Fact]
    public async Task Streams_that_stay_open_together_count_as_open_at_once_and_one_alone_counts_as_one()
    {
        await using var fake = await FakeOpencode.StartAsync();
        await using var proxy = await UpstreamProxy.StartAsync(fake.BaseUrl);
        using var http = new HttpClient { BaseAddress = proxy.BaseUrl };

        using (var first = await http.GetAsync("global/event", HttpCompletionOption.ResponseHeadersRead))
        {
            await Eventually.HoldsAsync(() => proxy.OpenStreams == 1, "the first stream open", TimeSpan.FromSeconds(10));
            Assert.Equal(1, proxy.MaxOpenStreams);
            using var second = await http.GetAsync("global/event", HttpCompletionOption.ResponseHeadersRead);
            // Both stay open past the grace: a second reader, counted once the grace has passed.
            await Eventually.HoldsAsync(() => proxy.MaxOpenStreams == 2, "two streams counted as open at once", TimeSpan.FromSeconds(10));
        }

        await Eventually.HoldsAsync(() => proxy.OpenStreams == 0, "both streams closed", TimeSpan.FromSeconds(10));
        proxy.ResetCounts();
        Assert.Equal(0, proxy.MaxOpenStreams);
    }
}
