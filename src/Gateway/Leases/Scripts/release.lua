-- Gives a lease up. KEYS: 1 the lease, 2 the nodes' held counts (hash). ARGV: 1 the lease's value, 2 this node, 3 the
-- release channel, 4 the upstream, 5 the quarantine in ms, '0' for none.
-- Without quarantine the lease is deleted and the release announced on the channel, so a waiting node takes it at once.
-- With one (the upstream was removed) it becomes 'retired|{token}' for that long and nothing is announced: nodes that
-- have not seen the removal yet cannot take it and read the removed server again. Returns 1 when given up, 0 when the
-- lease was no longer this one's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[5] == '0' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
else
  redis.call('SET', KEYS[1], 'retired|' .. string.match(ARGV[1], '|(%d+)$'), 'PX', ARGV[5])
end
if tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
end
return 1
