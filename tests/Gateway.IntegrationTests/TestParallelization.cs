using Xunit;

// Two tests here measure the test process itself: the slow-consumer test bounds its managed memory growth (measured
// 12 MB alone, 77 MB once while the cluster tests ran beside it), and the cluster tests' proxy observes stream
// hand-overs within milliseconds. So the two collections (one opencode, one cluster) run one after the other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
