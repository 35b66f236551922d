-- A session's state with its texts, or nil. KEYS: 1 state. ARGV: 1 text key prefix. Returns {fields-and-values, texts}
-- where texts alternate name and value.
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return false end
local texts = {}
for n = 1, #all, 2 do
  local f = all[n]
  if string.sub(f, 1, 2) == 'f:' then
    local name = string.sub(f, 3)
    table.insert(texts, name)
    table.insert(texts, redis.call('GET', ARGV[1] .. name) or '')
  end
end
return {all, texts}
