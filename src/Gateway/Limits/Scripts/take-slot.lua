-- Takes one of a name's slots when fewer than max are held by live nodes. KEYS: 1 the name's slots (hash: one field
-- '{incarnation}#{n}' per slot). ARGV: 1 this node's incarnation, 2 max, 3 the prefix of the incarnations' liveness
-- keys, 4 the new slot's field, 5 the liveness TTL in ms. Returns 1 when taken, 0 at the limit, plus 2 when this node's
-- liveness key was missing (created here: the node writes its other slots again, others may have dropped them).
-- A node's slots count while its liveness key exists: those of a node that died without giving them back are dropped.
local fresh = redis.call('SET', ARGV[3] .. ARGV[1], '1', 'PX', ARGV[5], 'NX')
local live = {}
live[ARGV[1]] = true
local total = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local incarnation = string.match(field, '^(.*)#')
  local alive = live[incarnation]
  if alive == nil then
    alive = redis.call('EXISTS', ARGV[3] .. incarnation) == 1
    live[incarnation] = alive
  end
  if alive then
    total = total + 1
  else
    redis.call('HDEL', KEYS[1], field)
  end
end
local flag = 0
if fresh then
  flag = 2
end
if total >= tonumber(ARGV[2]) then
  return flag
end
redis.call('HSET', KEYS[1], ARGV[4], '1')
return flag + 1
