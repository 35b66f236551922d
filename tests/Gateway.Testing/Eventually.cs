using Microsoft.Extensions.Time.Testing;

namespace OpencodeGateway.Testing;

/// <summary>
/// Waits for a condition decided outside the test's control (another thread, process or connection, Redis's clock)
/// with a deadline, instead of sleeping and hoping: asks again every 20 ms and fails with <see cref="TimeoutException"/>
/// naming what never came.
/// </summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    /// <param name="what">What was waited for; <paramref name="describe"/>, when given, adds where things were at the deadline.</param>
    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, Func<string>? describe = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var deadline = DateTime.UtcNow + limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not within {limit.TotalSeconds:0.#} s: {what}" + (describe is null ? "" : $" ({describe()})"));
            }

            await Task.Delay(Interval);
        }
    }

    public static Task HoldsAsync(Func<bool> condition, string what, TimeSpan? timeout = null, Func<string>? describe = null) =>
        HoldsAsync(() => Task.FromResult(condition()), what, timeout, describe);

    /// <summary>
    /// Advances <paramref name="clock"/> by <paramref name="step"/> until <paramref name="condition"/> holds (not at all
    /// when it holds already): what runs on the clock may be busy when a tick comes (its work goes to Redis) or not have
    /// armed its timer yet, so one step may not be enough.
    /// </summary>
    public static async Task AdvanceUntilAsync(FakeTimeProvider clock, TimeSpan step, Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + DefaultTimeout;
        if (await condition())
        {
            return;
        }

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

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not within {DefaultTimeout.TotalSeconds} s of advancing the clock: {what}");
            }
        }
    }

    public static Task AdvanceUntilAsync(FakeTimeProvider clock, TimeSpan step, Func<bool> condition, string what) =>
        AdvanceUntilAsync(clock, step, () => Task.FromResult(condition()), what);
}
