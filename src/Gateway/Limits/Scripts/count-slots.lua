-- The slots a name holds on live nodes. KEYS: 1 the name's slots. ARGV: 1 this node's incarnation, 2 the prefix of the
-- incarnations' liveness keys.
local live = {}
live[ARGV[1]] = true
local total = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local incarnation = string.match(field, '^(.*)#')
  local alive = live[incarnation]
  if alive == nil then
    alive = redis.call('EXISTS', ARGV[2] .. incarnation) == 1
    live[incarnation] = alive
  end
  if alive then
    total = total + 1
  end
end
return total
