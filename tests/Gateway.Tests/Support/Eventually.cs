using Microsoft.Extensions.Time.Testing;

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

    /// <summary>
    /// Advances <paramref name="clock"/> by <paramref name="step"/> until <paramref name="condition"/> holds: what runs on
    /// the clock may be busy when a tick comes (its work goes to Redis), so one step may not be enough.
    /// </summary>
    public static async Task AdvanceUntilAsync(FakeTimeProvider clock, TimeSpan step, Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + DefaultTimeout;
        while (true)
        {
            clock.Advance(step);
            for (var i = 0; i < 10; i++)
            {
                if (await condition())
                {
                    return;
                }

                await Task.Delay(10);
            }

            Assert.True(DateTime.UtcNow < deadline, $"not within {DefaultTimeout.TotalSeconds} s of advancing the clock: {what}");
        }
    }

    public static Task AdvanceUntilAsync(FakeTimeProvider clock, TimeSpan step, Func<bool> condition, string what) =>
        AdvanceUntilAsync(clock, step, () => Task.FromResult(condition()), what);
}
