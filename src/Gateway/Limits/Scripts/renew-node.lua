-- Keeps this node's slots counting: renews its liveness key. Returns 1, or 0 when the key was gone (the node was
-- taken for dead, or Redis lost its data): the node then writes its slots again. KEYS: 1 the liveness key. ARGV: 1 TTL ms.
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'XX') then
  return 1
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 0
