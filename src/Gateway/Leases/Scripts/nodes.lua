-- The nodes that share the upstreams' leases, for spreading them: each node's liveness (a sorted set scored by when it
-- expires, Redis's clock in ms), how many leases it holds and how many upstreams it wants (hashes).
-- KEYS: 1 the liveness set, 2 the held counts, 3 the wanted counts. ARGV: 1 the liveness TTL in ms; then, to write this
-- node's entry first (a heartbeat): 2 this node, 3 its held count, 4 its wanted count.
-- Drops the nodes whose liveness expired; returns {node, held, wanted, …} of the live ones.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[2] then
  redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[1]), ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
end
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms)) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
  redis.call('HDEL', KEYS[3], node)
end
local result = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ms, '+inf')) do
  table.insert(result, node)
  table.insert(result, tonumber(redis.call('HGET', KEYS[2], node) or '0'))
  table.insert(result, tonumber(redis.call('HGET', KEYS[3], node) or '0'))
end
return result
