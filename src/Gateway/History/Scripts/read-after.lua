-- The events after a position, when the history holds all of them; nil otherwise. KEYS: 1 state, 2 history.
-- ARGV: 1 epoch, 2 seq.
if redis.call('HGET', KEYS[1], '~e') ~= ARGV[1] then return false end
local q = tonumber(redis.call('HGET', KEYS[1], '~q'))
local since = tonumber(ARGV[2])
if since > q or since < 0 then return false end
if since == q then return {} end
local entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-' .. string.format('%.0f', since + 1),
  ARGV[1] .. '-' .. string.format('%.0f', q))
if #entries ~= q - since then return false end
local out = {}
for _, entry in ipairs(entries) do table.insert(out, entry[2][2]) end
return out
