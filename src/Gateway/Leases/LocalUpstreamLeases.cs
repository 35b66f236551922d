namespace OpencodeGateway.Leases;

/// <summary>A single node holds every upstream's stream, for good: nobody to hand a lease over to, nobody to keep out.</summary>
internal sealed class LocalUpstreamLeases : IUpstreamLeases
{
    public Task<IUpstreamLease> AcquireAsync(string upstream, CancellationToken ct) => Task.FromResult<IUpstreamLease>(new Lease(upstream));

    public Task<string?> HolderAsync(string upstream, CancellationToken ct) => Task.FromResult<string?>(Lease.LocalValue);

    private sealed class Lease(string upstream) : IUpstreamLease
    {
        public const string LocalValue = "local|0";

        public string Upstream { get; } = upstream;
        public long Token => 0;
        public string Value => LocalValue;
        public CancellationToken Lost => CancellationToken.None;
        public CancellationToken HandOver => CancellationToken.None;

        public ValueTask RetireAsync(TimeSpan quarantine) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
