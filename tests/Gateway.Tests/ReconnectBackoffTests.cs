using OpencodeGateway.Ingest;

namespace OpencodeGateway.Tests;

public class ReconnectBackoffTests
{
    [Fact]
    public void Grows_exponentially_is_capped_and_jittered()
    {
        var random = new Random(42);
        var initial = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(5);
        for (var attempt = 0; attempt < 40; attempt++)
        {
            var step = Math.Min(100 * Math.Pow(2, Math.Min(attempt, 30)), 5000);
            var delays = Enumerable.Range(0, 50).Select(_ => ReconnectBackoff.Delay(attempt, initial, max, random).TotalMilliseconds).ToList();
            Assert.All(delays, d => Assert.InRange(d, step / 2, step));
            Assert.True(delays.Distinct().Count() > 1, "jitter");
        }
    }
}
