-- Appends a batch of one session: its events and the live-state changes they made, and publishes the events.
-- KEYS: 1 state, 2 history, 3 lease, 4 active set.
-- ARGV: 1 lease value ('' = no fencing), 2 epoch, 3 previous seq, 4 new seq, 5 stream id, 6 full (1: the changes
-- replace the whole state), 7 channel, 8 text key prefix, 9 max events, 10 max bytes, 11 ttl ms, 12 session id,
-- 13-17 counts of sets, deletes, text sets, text appends, events; then the items: (field, value)..., field...,
-- (text, value)..., (text, value)..., (seq, json, size)....
-- Returns OK; DUP when already applied (a retry); RESYNC when the store does not hold the state the batch follows (it
-- lost data, or this batch came after a gap): the holder writes the session whole; FENCED when another node holds the
-- lease; NEWER when the store holds a newer epoch of the session (the writer moves the session above it: epochs never
-- go back); NOLEASE when nobody does (Redis lost it, or it expired): the writer tries again until it is held.
if ARGV[1] ~= '' then
  local lease = redis.call('GET', KEYS[3])
  if not lease then return 'NOLEASE' end
  if lease ~= ARGV[1] then return 'FENCED' end
end
local epoch = ARGV[2]
local state = redis.call('HMGET', KEYS[1], '~e', '~q', '~b', '~r')
local e = state[1]
local q = tonumber(state[2] or '-1')
local bytes = tonumber(state[3] or '0')
local refreshed = tonumber(state[4] or '0')
if e and tonumber(e) > tonumber(epoch) then return 'NEWER' end
if ARGV[6] == '0' then
  if e ~= epoch or q ~= tonumber(ARGV[3]) then
    if e == epoch and q >= tonumber(ARGV[4]) then return 'DUP' end
    return 'RESYNC'
  end
else
  if e == epoch and q > tonumber(ARGV[4]) then return 'DUP' end
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'f:' then redis.call('DEL', ARGV[8] .. string.sub(f, 3)) end
  end
  redis.call('DEL', KEYS[1])
  if e ~= epoch then
    redis.call('DEL', KEYS[2])
    bytes = 0
  end
  refreshed = 0
end
local ttl = tonumber(ARGV[11])
local textTtl = math.floor(ttl * 3 / 2)
local i = 18
for n = 1, tonumber(ARGV[13]) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for n = 1, tonumber(ARGV[14]) do redis.call('HDEL', KEYS[1], ARGV[i]); i = i + 1 end
for n = 1, tonumber(ARGV[15]) do redis.call('SET', ARGV[8] .. ARGV[i], ARGV[i + 1], 'PX', textTtl); i = i + 2 end
for n = 1, tonumber(ARGV[16]) do
  local key = ARGV[8] .. ARGV[i]
  redis.call('APPEND', key, ARGV[i + 1])
  redis.call('PEXPIRE', key, textTtl)
  i = i + 2
end
for n = 1, tonumber(ARGV[17]) do
  redis.call('XADD', KEYS[2], epoch .. '-' .. ARGV[i], 'e', ARGV[i + 1], 'n', ARGV[i + 2])
  redis.call('PUBLISH', ARGV[7], ARGV[i + 1])
  bytes = bytes + tonumber(ARGV[i + 2])
  i = i + 3
end
local count = redis.call('XLEN', KEYS[2])
while count > 1 and (count > tonumber(ARGV[9]) or bytes > tonumber(ARGV[10])) do
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[2], first[1])
  bytes = bytes - tonumber(first[2][4])
  count = count - 1
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], '~e', epoch, '~q', ARGV[4], '~x', ARGV[5], '~b', string.format('%.0f', bytes))
-- Texts outlive the state a little, so a reader never finds a field without its text; refreshed as a whole
-- every quarter TTL (each write refreshes what it touches).
if ms - refreshed > ttl / 4 then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'f:' then redis.call('PEXPIRE', ARGV[8] .. string.sub(f, 3), textTtl) end
  end
  redis.call('HSET', KEYS[1], '~r', string.format('%.0f', ms))
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[4], ms, ARGV[12])
return 'OK'
