-- A node stops: it leaves the nodes that share the leases at once, so the others count without it.
-- KEYS: 1 the liveness set, 2 the held counts, 3 the wanted counts. ARGV: 1 the node.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
