-- Renews a lease its holder still holds. KEYS: 1 the lease, 2 the fencing counter. ARGV: 1 the lease's value
-- ('{node}|{token}'), 2 the TTL in ms, 3 its token.
-- Returns 1: renewed; 2: it had expired (Redis was unreachable or lost its data) and nobody took it since: reclaimed (a
-- holder since then left the fencing counter above this token); 0: lost.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder and tonumber(redis.call('GET', KEYS[2]) or '0') <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
