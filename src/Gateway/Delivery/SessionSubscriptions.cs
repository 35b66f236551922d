using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Threading.Channels;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Delivery;

/// <summary>
/// In-process watchers of a session's events (the SSE endpoints), fed by the same dispatch as the SignalR groups, so
/// they need no upstream subscription of their own. Each has a bounded queue; one that overflows is completed with
/// <see cref="SlowSubscriberException"/> and its client resumes with <c>Last-Event-ID</c>.
/// </summary>
internal sealed class SessionSubscriptions
{
    private readonly ConcurrentDictionary<string, ImmutableArray<Subscription>> _byGroup = new(StringComparer.Ordinal);

    public Subscription Add(string group, int capacity)
    {
        var subscription = new Subscription(this, group, capacity);
        _byGroup.AddOrUpdate(group, static (_, s) => [s], static (_, list, s) => list.Add(s), subscription);
        return subscription;
    }

    /// <summary>Called by the dispatcher, in the session's order.</summary>
    public void Publish(string group, object item)
    {
        if (_byGroup.TryGetValue(group, out var subscriptions))
        {
            foreach (var subscription in subscriptions)
            {
                if (!subscription.Writer.TryWrite(item))
                {
                    subscription.Writer.TryComplete(new SlowSubscriberException());
                }
            }
        }
    }

    private void Remove(Subscription subscription)
    {
        while (_byGroup.TryGetValue(subscription.Group, out var list))
        {
            var updated = list.Remove(subscription);
            if (updated.IsEmpty
                ? _byGroup.TryRemove(new KeyValuePair<string, ImmutableArray<Subscription>>(subscription.Group, list))
                : _byGroup.TryUpdate(subscription.Group, updated, list))
            {
                return;
            }
        }
    }

    /// <summary>A session's <see cref="SessionEvent"/>s and pushed <see cref="SessionSnapshot"/>s, in order.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly SessionSubscriptions _owner;
        private readonly Channel<object> _channel;

        internal Subscription(SessionSubscriptions owner, string group, int capacity)
        {
            _owner = owner;
            Group = group;
            _channel = Channel.CreateBounded<object>(new BoundedChannelOptions(capacity)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the subscriber is dropped
            });
        }

        public string Group { get; }
        public ChannelReader<object> Reader => _channel.Reader;
        internal ChannelWriter<object> Writer => _channel.Writer;

        public void Dispose()
        {
            _owner.Remove(this);
            _channel.Writer.TryComplete();
        }
    }
}

/// <summary>A subscriber fell too far behind and was dropped.</summary>
internal sealed class SlowSubscriberException() : Exception("The subscriber fell too far behind and was dropped.");
