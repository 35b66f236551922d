-- Creates a session's state when it has none (a join before any event): a new epoch at seq 0, continuous with the
-- upstream's current stream. KEYS: 1 state, 2 last-epoch counter, 3 stream key, 4 active set. ARGV: 1 ttl ms,
-- 2 session id. Returns {epoch, seq}. (The epoch is handed out as new-epoch.lua does.)
local e = redis.call('HGET', KEYS[1], '~e')
if e then return {e, redis.call('HGET', KEYS[1], '~q')} end
local KEYS_EPOCH = KEYS[2]
local PREVIOUS = 0
local now = redis.call('TIME')
local epoch = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS_EPOCH) or '0')
if epoch <= last then epoch = last + 1 end
if epoch <= PREVIOUS then epoch = PREVIOUS + 1 end
redis.call('SET', KEYS_EPOCH, string.format('%.0f', epoch))
local text = string.format('%.0f', epoch)
redis.call('HSET', KEYS[1], '~e', text, '~q', '0', '~x', redis.call('GET', KEYS[3]) or '', '~b', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000, ARGV[2])
return {text, '0'}
