namespace OpencodeGateway.Testing;

/// <summary>Waits for what another thread or process makes true: asks again every 20 ms, and fails the test naming what never came.</summary>
public static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            await Task.Delay(20);
        }
    }
}
