namespace Gateway.Tests.Support;

/// <summary>
/// Waits for a condition decided outside the test's control (Redis's clock, another connection's delivery) with a
/// deadline, instead of sleeping and hoping: fails with <c>what</c> when the deadline passes first.
/// </summary>
internal static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {(timeout ?? DefaultTimeout).TotalSeconds} s: {what}");
            await Task.Delay(10);
        }
    }

    public static Task HoldsAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        HoldsAsync(() => Task.FromResult(condition()), what, timeout);
}
