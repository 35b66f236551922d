-- A sliding-window log: counts one occurrence when fewer than max happened within the window; returns -1 when counted,
-- else the milliseconds until one more is allowed. KEYS: 1 the log (sorted set, score: ms). ARGV: 1 max, 2 window ms,
-- 3 a member unique to this occurrence, 4 now (ms, the caller's clock: nodes' clocks agree far closer than a window).
local now = tonumber(ARGV[4])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return -1
