-- Takes an upstream's lease when nobody holds it. KEYS: 1 the lease, 2 the fencing counter, 3 the nodes' held counts
-- (hash). ARGV: 1 this node, 2 the lease TTL in ms, 3 '1' to take it, '0' only to ask whether it is free.
-- Returns the new fencing token when taken; 0 when another holds it (or held it and retired it); -1 when it is free and
-- ARGV[3] is '0' (the node decides whether it is its to take, then calls again with '1').
-- The token never falls below Redis's clock in ms, so tokens keep growing even after Redis lost its data.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[3] ~= '1' then return -1 end
local token = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if token < ms then
  token = ms
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return token
