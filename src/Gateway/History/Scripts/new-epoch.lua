-- Hands out an epoch: at least Redis's clock in µs, above the last one handed out and above the session's previous.
-- KEYS: 1 the last-epoch counter. ARGV: 1 the session's previous epoch. Returns the new epoch (as text: %.0f keeps it exact).
local KEYS_EPOCH = KEYS[1]
local PREVIOUS = tonumber(ARGV[1])
local now = redis.call('TIME')
local epoch = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS_EPOCH) or '0')
if epoch <= last then epoch = last + 1 end
if epoch <= PREVIOUS then epoch = PREVIOUS + 1 end
redis.call('SET', KEYS_EPOCH, string.format('%.0f', epoch))
return string.format('%.0f', epoch)
